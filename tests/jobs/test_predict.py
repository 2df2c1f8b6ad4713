"""Predictor: letterbox round trip, PyTorch vs ONNX, `lrnet predict` outputs, panels, bad images, video."""

import json

import cv2
import numpy as np
import pytest
import torch

from lrnet.cli import main
from lrnet.jobs.export import ExportJob, run_export
from lrnet.jobs.predict import yolo_label_lines
from lrnet.runtime.drawing import class_colour, draw_detections, side_by_side
from lrnet.runtime.onnx_backend import OnnxModel
from lrnet.runtime.predictor import Predictor, load_inference_model
from tests.fixtures.predict_fixtures import make_checkpoint
from tests.fixtures.square_detector import SquareDetector, paint_squares


def test_letterbox_round_trip_gives_original_pixels():
    # 128 x 256 (h x w) -> 64 x 128 content centred in 128 x 128: scale 0.5, vertical pad 32
    squares = [(10, 20, 8, 0), (200, 100, 12, 1), (120, 60, 6, 0)]
    img = paint_squares(128, 256, squares)
    model = SquareDetector()
    dets = Predictor(model, imgsz=128, conf=0.5).predict_image(img)
    assert model.shapes == [(1, 3, 128, 128)]
    expected = sorted(
        [float(x), float(y), float(x + s), float(y + s), 0.9, float(c)] for x, y, s, c in squares
    )
    assert torch.allclose(torch.tensor(sorted(dets.tolist())), torch.tensor(expected), atol=1e-5)


def test_yolo_label_lines_hand_worked():
    lines = yolo_label_lines(torch.tensor([[10.0, 20.0, 30.0, 60.0, 0.875, 2.0]]), (100, 200))
    assert lines == ["2 0.100000 0.400000 0.100000 0.400000 0.87500"]


def test_drawing_marks_box_edges_in_class_colour_and_panels():
    img = np.zeros((50, 60, 3), dtype=np.uint8)
    out = draw_detections(
        img, torch.tensor([[10.0, 10.0, 30.0, 40.0, 0.9, 3.0]]), ["a", "b", "c", "d"], labels=False
    )
    assert tuple(out[25, 10]) == class_colour(3) and tuple(out[25, 20]) == (0, 0, 0)
    assert img.sum() == 0  # input untouched
    tiny = draw_detections(img, torch.tensor([[20.0, 20.0, 21.0, 21.0, 0.9, 0.0]]), labels=False)
    assert tuple(tiny[19, 19]) == class_colour(0)  # a 1-px box is drawn one pixel larger
    both = side_by_side([img, np.zeros((40, 30, 3), np.uint8)], ["m1", "m2"], bar=20, gap=4)
    assert both.shape == (70, 60 + 4 + 30, 3)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("w")
    a = make_checkpoint(root / "base.pt", nc=3, seed=0)
    b = make_checkpoint(root / "lr.pt", nc=3, seed=1)
    return a, b, run_export(ExportJob(str(a), out=str(root / "base.onnx"), imgsz=64)).path


def test_onnx_and_pytorch_predictors_agree(weights):
    a, _, onnx_path = weights
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (50, 90, 3), dtype=np.uint8)
    model, _, _ = load_inference_model(a)
    ref = Predictor(model, imgsz=64, conf=0.0, max_det=50).predict_image(img)
    got = Predictor(OnnxModel(onnx_path), imgsz=64, conf=0.0, max_det=50).predict_image(img)
    assert ref.shape == got.shape and ref.shape[0] > 5
    assert torch.allclose(got[:, 4], ref[:, 4], atol=1e-4)
    assert torch.allclose(got[:, :4], ref[:, :4], atol=1e-2)


def _images(folder, n=2):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.jpg"), rng.integers(0, 255, (48 + 16 * i, 80, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def test_predict_cli_writes_images_labels_json_and_skips_broken(weights, tmp_path, capsys):
    src = _images(tmp_path / "src")
    args = ["predict", "--weights", str(weights[0]), "--source", str(src), "--conf", "0", "--max-det", "4"]
    args += ["--save-txt", "--save-json", "--project", str(tmp_path / "runs"), "--name", "p"]
    with pytest.warns(UserWarning, match=r"broken\.png: cannot decode"):
        assert main(args) == 0
    assert "1 unreadable images skipped" in capsys.readouterr().out
    out = tmp_path / "runs" / "p"
    for i in range(2):
        assert cv2.imread(str(out / f"img{i}.jpg")).shape == (48 + 16 * i, 80, 3)
        rows = (out / "labels" / f"img{i}.txt").read_text().splitlines()
        assert len(rows) == 4 and all(len(r.split()) == 6 for r in rows)
    preds = json.loads((out / "predictions.json").read_text())
    assert len(preds) == 8 and {p["image_id"] for p in preds} == {0, 1}
    assert all(0 <= p["category_id"] < 3 and len(p["bbox"]) == 4 for p in preds)


def test_predict_accepts_onnx_and_compare_draws_panels_side_by_side(weights, tmp_path):
    a, b, onnx_path = weights
    src = _images(tmp_path / "src", n=1)
    with pytest.warns(UserWarning):
        assert main(["predict", "--weights", str(onnx_path), "--source", str(src / "*.jpg"), "--project",
                     str(tmp_path), "--name", "onnx"]) == 0  # fmt: skip
        assert main(["predict", "--weights", str(a), str(b), str(onnx_path), "--titles", "base", "LR", "onnx",
                     "--source", str(src), "--project", str(tmp_path), "--name", "cmp"]) == 0  # fmt: skip
    assert (tmp_path / "onnx" / "img0.jpg").is_file()
    panel = cv2.imread(str(tmp_path / "cmp" / "img0.jpg"))
    assert panel.shape[1] == 3 * 80 + 2 * 4 and panel.shape[0] == 48 + 24


def test_predict_video_source(weights, tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write mp4v")
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, dtype=np.uint8))
    writer.release()
    assert main(["predict", "--weights", str(weights[0]), "--source", str(video), "--save-txt", "--project",
                 str(tmp_path), "--name", "v"]) == 0  # fmt: skip
    cap = cv2.VideoCapture(str(tmp_path / "v" / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert sorted(p.name for p in (tmp_path / "v" / "labels").iterdir()) == [
        f"clip_{i}.txt" for i in range(3)
    ]


def test_predict_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    assert main(["predict", "--weights", str(bad), "--source", str(tmp_path)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_predict_cli_sliced_with_real_model(weights, tmp_path):
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), np.random.default_rng(1).integers(0, 255, (150, 200, 3), dtype=np.uint8))
    args = [
        "predict",
        "--weights",
        str(weights[0]),
        "--source",
        str(src),
        "--slice",
        "64",
        "--overlap",
        "0.25",
    ]
    assert main([*args, "--conf", "0", "--save-txt", "--project", str(tmp_path), "--name", "s"]) == 0
    rows = [r.split() for r in (tmp_path / "s" / "labels" / "big.txt").read_text().splitlines()]
    assert 0 < len(rows) <= 300
    xy = np.array([[float(v) for v in r[1:3]] for r in rows])
    assert (xy >= 0).all() and (xy <= 1).all()
    # (a random head predicts tile-sized boxes; exact tile -> image mapping is tested in test_slicing.py)
