"""Threads in inference: the predictor feeds a tuner forward time per input pixel (the validator's
test is in test_validator.py); `lrnet predict` / `val` adapt by default, fix a count with --threads
(bit-identical outputs) and put torch's count back; `lrnet benchmark` times at a fixed count (0:
lrnet's default for the machine)."""

import json

import cv2
import numpy as np
import pytest
import torch

from lrnet.cli import main
from lrnet.jobs.benchmark import BenchmarkJob, run_benchmark
from lrnet.jobs.val import ValJob, format_report, run_validation
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.threads import available_cores, default_threads
from tests.fixtures.fake_timing import STEP, RecordingTuner, StepClock
from tests.fixtures.predict_fixtures import make_checkpoint, make_yolo_dataset
from tests.fixtures.square_detector import SquareDetector, paint_squares


def test_predictor_feeds_forward_time_per_pixel(monkeypatch):
    monkeypatch.setattr("lrnet.runtime.predictor.time", StepClock())
    tuner = RecordingTuner()
    imgs = [paint_squares(40 + 10 * i, 64, [(5, 5, 8, 0)]) for i in range(3)]
    Predictor(SquareDetector(), imgsz=64, conf=0.5, batch=2, tuner=tuner).predict_batch(imgs)
    # two passes: 2 images, then the last one alone; the same time per pixel means the same speed
    assert tuner.steps == pytest.approx([STEP / (2 * 64 * 64), STEP / (64 * 64)])


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("threads")
    data = make_yolo_dataset(root / "data", nc=3, n=2, size=64)
    return root, make_checkpoint(root / "m.pt", nc=3, imgsz=64), data


def test_predict_fixed_threads_repeat_bit_for_bit_and_are_put_back(model_and_data, tmp_path, capsys):
    _, ckpt, _ = model_and_data
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(src / f"i{i}.png"), rng.integers(0, 255, (48, 64 + 8 * i, 3), dtype=np.uint8))
    before = torch.get_num_threads()
    common = ["predict", "--weights", str(ckpt), "--source", str(src), "--conf", "0", "--save-json",
              "--project", str(tmp_path / "runs")]  # fmt: skip
    assert main([*common, "--name", "a", "--threads", "1"]) == 0
    assert main([*common, "--name", "b", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("threads: 1 (fixed by --threads; outputs are bit-identical)") == 2
    a, b = ((tmp_path / "runs" / n / "predictions.json").read_text() for n in "ab")
    assert a == b and json.loads(a)
    assert torch.get_num_threads() == before
    assert main([*common, "--name", "c"]) == 0  # the default: adaptive
    assert "threads: adaptive, starting at" in capsys.readouterr().out or available_cores() == 1
    assert torch.get_num_threads() == before


def test_val_reports_its_threads(model_and_data, tmp_path):
    _, ckpt, data = model_and_data
    summary = run_validation(ValJob(str(ckpt), str(data), project=str(tmp_path), json=True, threads=1))
    assert summary["threads"] == "threads: 1 (fixed by --threads; outputs are bit-identical)"
    assert summary["options"]["threads"] == 1
    assert summary["threads"] in format_report(summary)
    adaptive = run_validation(ValJob(str(ckpt), str(data), project=str(tmp_path), json=True))
    assert adaptive["threads"].startswith("threads: adaptive") or available_cores() == 1


def test_benchmark_times_at_a_fixed_count(model_and_data, tmp_path, monkeypatch):
    monkeypatch.setattr("lrnet.runtime.predictor.time", StepClock())
    _, ckpt, data = model_and_data
    before = torch.get_num_threads()
    job = BenchmarkJob(str(ckpt), str(data), formats=["pytorch"], runs=1, warmup=0, project=str(tmp_path))
    assert run_benchmark(job)["threads"] == default_threads(available_cores(), 0)  # 0: lrnet's default
    job = BenchmarkJob(str(ckpt), str(data), formats=["pytorch"], runs=1, warmup=0, project=str(tmp_path),
                       threads=1)  # fmt: skip
    assert run_benchmark(job)["threads"] == 1
    assert torch.get_num_threads() == before
