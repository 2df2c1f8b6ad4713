"""`lrnet train --windows`: a short run on large images sampled as windows, the options end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from lrnet.cli import main
from lrnet.data.source import DetectionRecord
from lrnet.errors import ConfigError
from lrnet.training.similarity_setup import training_box_sizes
from lrnet.training.train_config import TrainConfig
from lrnet.weights.checkpoint import load_checkpoint
from tests.fixtures.tiny_data import write_tiny_yolo


def test_train_on_windows_of_large_images(tmp_path, capsys):
    data = write_tiny_yolo(tmp_path / "data", n_train=1, n_val=1, size=384, seed=2)
    args = ["train", "--data", str(data), "--model", "yolov8n", "--epochs", "1", "--imgsz", "64",
            "--batch", "9", "--workers", "0", "--device", "cpu", "--windows", "128",
            "--window-empty-share", "0.25", "--window-min-visible", "0.7",
            "--project", str(tmp_path / "runs"), "--name", "w", "--tensorboard", "false",
            "--plots", "false", "--close-mosaic", "0"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"on {data}: {math.ceil(384 * 384 / 128**2)} images" in out  # an epoch is 9 windows: one batch
    run = tmp_path / "runs" / "w"
    saved = yaml.safe_load((run / "args.yaml").read_text())
    assert (saved["windows"], saved["window_empty_share"], saved["window_min_visible"]) == (128, 0.25, 0.7)
    ckpt = load_checkpoint(run / "weights" / "last.pt")
    assert ckpt["train_args"]["windows"] == 128 and ckpt["epoch"] == 0
    assert len((run / "results.csv").read_text().strip().splitlines()) == 2  # header + the one epoch


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"windows": 16}, r"windows=16 is below the smallest tile side 32"),
     ({"windows": 640, "cache": "ram"}, r"cache='ram'"),
     ({"window_empty_share": 1.5}, r"window_empty_share=1.5 is out of range")],
)  # fmt: skip
def test_window_options_are_checked(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig(**kwargs)


def test_similarity_box_sizes_at_the_window_scale():
    r = DetectionRecord("a.png", 4000, 2000, [[0, 0, 40, 20]], [0], [], 1)
    small = DetectionRecord("b.png", 300, 200, [[0, 0, 30, 10]], [0], [], 2)
    whole = training_box_sizes([r, small], 640)
    np.testing.assert_allclose(
        whole.numpy(), [[40 * 640 / 4000, 20 * 640 / 4000], [30 * 640 / 300, 10 * 640 / 300]]
    )
    windows = training_box_sizes([r, small], 640, window=800)  # 800 px windows; b is smaller than one
    np.testing.assert_allclose(
        windows.numpy(), [[40 * 640 / 800, 20 * 640 / 800], [30 * 640 / 300, 10 * 640 / 300]]
    )
