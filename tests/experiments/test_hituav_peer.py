"""experiments/hituav/run_peer.py without ultralytics: its COCO-detections writer, its ground-truth index,
its recipe, and that it never imports lrnet. The writer's output is scored by lrnet's evaluator on the
real HIT-UAV frames of tests/assets, DontCare as ignore regions."""

import ast
import sys
from pathlib import Path

import pytest
import yaml

from experiments.hituav import protocol as P
from experiments.hituav import run_peer
from lrnet.data import load_dataset_source
from lrnet.data.coco import source_to_coco
from lrnet.eval.coco_metrics import coco_metrics
from lrnet.training.train_config import TrainConfig

HIT_UAV = Path(__file__).resolve().parents[1] / "assets" / "hit_uav"
SCRIPTS = Path(run_peer.__file__).parent


def test_coco_detections_hand_worked():
    ids = {"a.jpg": 7, "b.png": 9}
    dets = run_peer.coco_detections(
        [
            ("/x/y/a.jpg", [[10.0, 20.0, 15.5, 30.25]], [0.912345678], [1.0]),
            ("b.png", [[0, 0, 1, 2], [3.33333, 4, 5, 6]], [0.5, 0.25], [0, 2]),
            ("/elsewhere/b.png", [], [], []),
        ],
        ids,
        [5, 11, 13],
    )
    assert dets == [
        {"image_id": 7, "category_id": 11, "bbox": [10.0, 20.0, 5.5, 10.25], "score": 0.91235},
        {"image_id": 9, "category_id": 5, "bbox": [0.0, 0.0, 1.0, 2.0], "score": 0.5},
        {"image_id": 9, "category_id": 13, "bbox": [3.333, 4.0, 1.667, 2.0], "score": 0.25},
    ]


@pytest.mark.parametrize(
    ("per_image", "match"),
    [
        ([("c.jpg", [], [], [])], "no image of the ground truth is named c.jpg"),
        ([("a.jpg", [[0, 0, 1, 1]], [0.5], [3])], "class index 3 outside the 3 categories"),
        ([("a.jpg", [[0, 0, 1, 1]], [0.5, 0.4], [0])], "1 boxes, 2 scores"),
    ],
)
def test_coco_detections_refuses_what_cannot_be_scored(per_image, match):
    with pytest.raises(run_peer.PeerError, match=match):
        run_peer.coco_detections(per_image, {"a.jpg": 1}, [0, 1, 2])


def _hit_uav_gt(tmp_path: Path) -> dict:
    data = tmp_path / "hit.yaml"
    cfg = {
        "path": str(HIT_UAV),
        "format": "voc",
        "val": ".",
        "names": list(P.NAMES),
        "ignore_classes": ["DontCare"],
    }
    data.write_text(yaml.safe_dump(cfg))
    return source_to_coco(load_dataset_source(data, "val", verbose=False))


def test_written_detections_score_through_lrnets_evaluator(tmp_path):
    gt = _hit_uav_gt(tmp_path)
    images, ids, cats, names = run_peer.ground_truth_index(gt, tmp_path / "gt.json")
    assert names == list(P.CLASSES) and cats == [0, 1, 2, 3] and len(images) == 2
    per_image = []
    for im in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == im["id"]]
        boxes = [[x, y, x + w, y + h] for a in anns if not a["iscrowd"] for x, y, w, h in [a["bbox"]]]
        classes = [cats.index(a["category_id"]) for a in anns if not a["iscrowd"]]
        per_image.append((im["file_name"], boxes, [0.9] * len(boxes), classes))
    perfect = run_peer.coco_detections(per_image, ids, cats)
    assert coco_metrics(gt, perfect)["AP"] == pytest.approx(1.0)
    # a confident detection of a class that is in the image, on a DontCare region: neither a hit nor
    # a false positive
    crowd = next(a for a in gt["annotations"] if a["iscrowd"])
    present = next(a["category_id"] for a in gt["annotations"] if not a["iscrowd"])
    x, y, w, h = crowd["bbox"]
    name = next(im["file_name"] for im in gt["images"] if im["id"] == crowd["image_id"])
    cls = [cats.index(present)]
    on_dontcare = run_peer.coco_detections([(name, [[x, y, x + w, y + h]], [0.99], cls)], ids, cats)
    assert coco_metrics(gt, perfect + on_dontcare)["AP"] == pytest.approx(1.0)
    # the same detection on background is a false positive ranked above every true one
    background = run_peer.coco_detections([(name, [[600, 0, 639, 20]], [0.99], cls)], ids, cats)
    assert coco_metrics(gt, perfect + background)["AP"] < 1.0


def test_ground_truth_index_refuses_duplicate_names(tmp_path):
    gt = {"images": [{"id": 1, "file_name": "x/a.jpg"}, {"id": 2, "file_name": "y/a.jpg"}], "categories": []}
    with pytest.raises(run_peer.PeerError, match="share a file name"):
        run_peer.ground_truth_index(gt, tmp_path / "gt.json")


def test_train_args_give_the_protocols_recipe(tmp_path):
    layout = P.Layout(tmp_path)
    row = P.PEER_ROWS[1]
    args = run_peer.train_args(row, seed=2, smoke=False, layout=layout, workers=1, device="cpu")
    assert args["data"] == str(layout.yolo_yaml) and args["epochs"] == 15 and args["seed"] == 2
    assert args["optimizer"] == "SGD" and args["nbs"] == 16 and args["close_mosaic"] == 3
    assert (args["box"], args["cls"], args["dfl"]) == (7.5, 0.5, 1.5)
    assert args["pretrained"] is False and args["amp"] is False and args["val"] is True
    assert args["mixup"] == 0.0 and args["copy_paste"] == 0.0 and args["imgsz"] == 320 and args["batch"] == 16
    smoke = run_peer.train_args(row, seed=0, smoke=True, layout=layout, workers=0, device="cpu")
    assert smoke["data"] == str(layout.yolo_smoke_yaml) and smoke["epochs"] == 1
    assert {k: v for k, v in smoke.items() if k not in ("data", "epochs", "seed", "workers")} == {
        k: v for k, v in args.items() if k not in ("data", "epochs", "seed", "workers")
    }  # the smoke run changes only the budget
    TrainConfig(**P.RECIPE)  # every recipe value is also a valid lrnet training option


def test_a_peer_experiment_row_changes_only_its_recipe_options(tmp_path):
    layout = P.Layout(tmp_path)
    by_name = {r.name: r for r in P.PEER_ROWS}
    base, row = by_name["ultralytics yolov8n-p2"], by_name["ultralytics yolov8n-p2 scale 0.25"]
    assert row.cfg == base.cfg and row.ref == base.name
    plain = run_peer.train_args(base, seed=1, smoke=False, layout=layout, workers=1, device="cpu")
    changed = run_peer.train_args(row, seed=1, smoke=False, layout=layout, workers=1, device="cpu")
    assert plain["scale"] == 0.5 and changed["scale"] == 0.25
    changed.pop("scale"), plain.pop("scale")
    assert changed == plain
    assert P.RECIPE["scale"] == 0.5  # the row does not change the protocol's recipe
    with pytest.raises(ValueError, match="not recipe keys"):
        P.PeerRow("typo", "yolov8n.yaml", options=(("scael", 0.25),))


def test_peer_scripts_never_import_lrnet():
    allowed = {"ultralytics", "torch", "numpy", "experiments", "__future__"} | set(sys.stdlib_module_names)
    for script in ("run_peer.py", "protocol.py"):
        tree = ast.parse((SCRIPTS / script).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
                if node.module and node.module.startswith("experiments"):
                    assert node.module == "experiments.hituav" and [a.name for a in node.names] == [
                        "protocol"
                    ]
            else:
                continue
            assert roots <= allowed, f"{script} imports {roots - allowed}"


def test_a_peer_row_may_change_the_ema_tau_which_a_callback_sets(tmp_path):
    import types

    row = P.PeerRow("ultralytics yolov8n-p2 EMA tau 100", "yolov8n-p2.yaml", options=(("ema_tau", 100.0),))
    assert row.ema_tau == 100.0 and P.PEER_ROWS[1].ema_tau == P.EMA["tau"] == 2000.0
    args = run_peer.train_args(row, seed=0, smoke=False, layout=P.Layout(tmp_path), workers=1, device="cpu")
    assert "ema_tau" not in args  # not an ultralytics train() argument
    assert args == run_peer.train_args(
        P.PEER_ROWS[1], seed=0, smoke=False, layout=P.Layout(tmp_path), workers=1, device="cpu"
    )
    with pytest.raises(ValueError, match="nor trainer options"):
        P.PeerRow("typo", "yolov8n.yaml", options=(("ema_tua", 100.0),))
    # the callback's decay is lrnet's ModelEMA decay with the same tau (an independent implementation)
    from torch import nn

    from lrnet.training.ema import ModelEMA

    trainer = types.SimpleNamespace(ema=types.SimpleNamespace(decay=None))
    run_peer.ema_tau_callback(100.0)(trainer)
    for updates in (0, 1, 100, 435, 5000):
        reference = ModelEMA(nn.Linear(1, 1), P.EMA["decay"], 100.0, updates=updates).current_decay()
        assert trainer.ema.decay(updates) == pytest.approx(reference, rel=1e-12)
    assert trainer.ema.decay(435) == pytest.approx(0.98699, abs=1e-5)  # 0.9999 * (1 - e^-4.35)
    run_peer.ema_tau_callback(100.0)(types.SimpleNamespace(ema=None))  # before the EMA exists: no-op
