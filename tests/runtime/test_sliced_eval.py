"""Sliced evaluation: a perfect detector fed tile by tile scores AP 1.0 after merging (real pixels)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lrnet.data.coco import source_to_coco
from lrnet.data.formats import load_dataset_source
from lrnet.errors import ConfigError
from lrnet.eval import coco_metrics, detections_to_coco
from lrnet.jobs.val import ValJob, format_report, run_validation
from lrnet.ops.slicing import SliceConfig, merge_tiles, slice_windows
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.sliced_eval import evaluate_sliced
from tests.fixtures.predict_fixtures import make_checkpoint

REPO = Path(__file__).resolve().parents[2]
DEEPFOREST = Path("/work/shared/data/deepforest_voc")
for parent in REPO.parents:
    if (parent / "shared" / "data" / "deepforest_voc").is_dir():
        DEEPFOREST = parent / "shared" / "data" / "deepforest_voc"
        break
needs_data = pytest.mark.skipif(not DEEPFOREST.is_dir(), reason="shared/data/deepforest_voc not present")


def gt_tile_detections(record, window) -> torch.Tensor:
    """The gt boxes seen by one tile: clipped to it, in tile pixels, score 1 (any visible part counts)."""
    x0, y0, x1, y1 = window
    b = record.boxes.astype(np.float64)
    clipped = np.column_stack(
        [b[:, 0].clip(x0, x1), b[:, 1].clip(y0, y1), b[:, 2].clip(x0, x1), b[:, 3].clip(y0, y1)]
    )
    seen = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    rows = np.column_stack([clipped - [x0, y0, x0, y0], np.ones(len(b)), record.cls])[seen]
    return torch.from_numpy(rows).float()


@pytest.fixture(scope="module")
def forest():
    return load_dataset_source(DEEPFOREST, "train", verbose=False)


@needs_data
@pytest.mark.parametrize("postprocess", ["nms", "greedy-nmm", "nmm"])
def test_perfect_detector_tile_by_tile_scores_ap_1(forest, postprocess):
    predictions, n_merged, n_border = [], 0, 0
    for r in forest.records:
        windows = slice_windows(r.height, r.width, 640, 0.2)  # 128 px overlap > the largest box (109 px)
        per_tile = [gt_tile_detections(r, w) for w in windows]
        n_border += sum(len(t) for t in per_tile) - len(r.boxes)  # boxes seen by more than one tile
        merged = merge_tiles(
            per_tile,
            windows,
            (r.height, r.width),
            postprocess=postprocess,
            match="ios",
            iou=0.5,
            max_det=1500,
        )
        n_merged += len(merged)
        predictions += detections_to_coco(merged, r.image_id, forest.category_ids)
    assert n_border > 100  # many boxes lie on tile borders: the test exercises merging
    assert n_merged == forest.num_boxes == 951  # no duplicate survives on a tile border
    # every gt box comes back exactly (the merged set equals the gt set)
    got = sorted((p["image_id"], *np.round(p["bbox"], 2)) for p in predictions)
    want = sorted((a["image_id"], *np.round(a["bbox"], 2)) for a in source_to_coco(forest)["annotations"])
    assert got == want
    if postprocess == "nms":  # pycocotools is slow on 574 boxes per image: score one of the three
        m = coco_metrics(source_to_coco(forest), predictions, protocol="aitod")
        assert m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0)


class PerfectPredictor(Predictor):
    """Returns the gt boxes of each tile, found from where the tile lies in its (known) image."""

    def __init__(self, source) -> None:
        super().__init__(lambda x: x, imgsz=64)
        self.by_key = {}
        for r in source.records:
            img = cv2.imread(r.im_file)
            self.by_key[(img.shape, int(img.sum()))] = r

    def predict_batch(self, imgs):
        out = []
        for tile in imgs:
            base = tile.base if tile.base is not None else tile
            r = self.by_key[(base.shape, int(base.sum()))]
            offset = tile.ctypes.data - base.ctypes.data
            y0, x0 = offset // base.strides[0], (offset % base.strides[0]) // base.strides[1]
            out.append(gt_tile_detections(r, (x0, y0, x0 + tile.shape[1], y0 + tile.shape[0])))
        return out


@needs_data
def test_evaluate_sliced_with_perfect_predictor_reports_tiles(forest):
    cfg = SliceConfig(slice=640, overlap=0.2)
    result = evaluate_sliced(PerfectPredictor(forest), forest, cfg, protocol="aitod", progress=False)
    assert result["metrics"]["AP"] == pytest.approx(1.0)
    assert len(result["predictions"]) == 951
    want_tiles = sum(len(slice_windows(r.height, r.width, 640, 0.2)) for r in forest.records)
    assert result["tiles"] == want_tiles and result["images"] == 4 and result["seconds_per_image"] > 0


@needs_data
def test_val_slice_runs_a_checkpoint_and_reports(tmp_path, forest):
    voc = tmp_path / "voc"  # the two smaller images, to keep pycocotools quick
    for sub in ("Annotations", "JPEGImages"):
        (voc / sub).mkdir(parents=True)
    for stem in ("2019_YELL_2_541000_4977000_image_crop", "OSBS_029"):
        (voc / "Annotations" / f"{stem}.xml").symlink_to(DEEPFOREST / "Annotations" / f"{stem}.xml")
        (voc / "JPEGImages" / f"{stem}.jpg").symlink_to(DEEPFOREST / "JPEGImages" / f"{stem}.jpg")
    forest = load_dataset_source(voc, "train", verbose=False)
    weights = make_checkpoint(tmp_path / "w.pt", nc=len(forest.names), imgsz=64)
    job = ValJob(
        str(weights), str(voc), split="train", imgsz=64, max_det=5, conf=0.01, project=str(tmp_path),
        json=True, slicing=SliceConfig(slice=640, overlap=0.2, merge="greedy-nmm"),
    )  # fmt: skip
    summary = run_validation(job)
    sl = summary["slicing"]
    assert sl["tiles"] == sum(len(slice_windows(r.height, r.width, 640, 0.2)) for r in forest.records)
    assert sl["max_det_per_tile"] == 5 and sl["merged_max_det"] == 1500
    assert sl["merge"] == "greedy-nmm" and sl["merge_metric"] == "ios" and sl["merge_threshold"] == 0.5
    assert summary["options"]["slicing"]["slice"] == 640 and summary["options"]["conf"] == 0.01
    preds = json.loads((Path(summary["save_dir"]) / "predictions.json").read_text())
    per_image = {}
    for p in preds:
        per_image[p["image_id"]] = per_image.get(p["image_id"], 0) + 1
    assert set(per_image) <= {r.image_id for r in forest.records}
    assert "tiles of 640 px" in format_report(summary)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"slice": 16}, "slice=16"),
        ({"slice": 640, "overlap": 1.0}, "overlap=1.0"),
        ({"slice": 640, "merge": "soft"}, "soft"),
        ({"slice": 640, "merge_metric": "giou"}, "giou"),
        ({"slice": 640, "merge_threshold": -0.5}, "-0.5"),
        ({"merged_max_det": -1}, "merged_max_det=-1"),
    ],
)
def test_bad_slice_options_raise_config_error(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        ValJob("w.pt", "d.yaml", slicing=SliceConfig(**kwargs))


def test_cli_val_bad_slice_is_one_line_exit_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "lrnet.cli", "val", "--weights", "w.pt", "--data", "d.yaml", "--slice", "640",
         "--merge-metric", "nope"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nope" in r.stderr
