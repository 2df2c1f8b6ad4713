"""End-to-end trainer runs on a tiny data set: outputs, determinism, SIGKILL + resume, DDP with torchrun."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrnet.training.trainer import train
from lrnet.weights.checkpoint import load_checkpoint, load_model
from tests.fixtures.tiny_data import write_tiny_yolo

REPO = Path(__file__).resolve().parents[2]
COMMON = ["--model", "yolov8n", "--imgsz", "128", "--workers", "0", "--device", "cpu", "--plots", "false"]


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory) -> Path:
    return write_tiny_yolo(tmp_path_factory.mktemp("tiny"), n_train=16, n_val=4, size=128)


def _rows(csv_path: Path) -> list[dict]:
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_results_checkpoints_and_is_deterministic(tiny_yaml, tmp_path):
    """Seeded runs with a fixed thread count give bit-identical weights (an adaptive count, the
    default, may split sums differently from run to run; the start-up line says so)."""
    kwargs = dict(model="yolov8n", data=str(tiny_yaml), epochs=1, imgsz=128, batch=8, workers=0, device="cpu",
                  threads=1)  # fmt: skip
    a = train(project=str(tmp_path), name="a", seed=3, **kwargs)
    b = train(project=str(tmp_path), name="a", seed=3, **kwargs)  # name taken -> "a2"
    assert b.save_dir.name == "a2"
    args_yaml = (a.save_dir / "args.yaml").read_text()
    assert args_yaml.startswith("# threads: 1 (fixed by --threads; seeded runs are bit-identical)\n")
    for name in ("results.csv", "results.png", "args.yaml", "weights/last.pt", "weights/best.pt"):
        assert (a.save_dir / name).is_file(), name
    rows = _rows(a.save_dir / "results.csv")
    assert [r["epoch"] for r in rows] == ["1"]
    assert float(rows[0]["train/box_loss"]) > 0 and "metrics/AP50" in rows[0]

    ca, cb = load_checkpoint(a.last), load_checkpoint(b.last)
    for key in ("model", "train_model"):
        assert ca[key].keys() == cb[key].keys()
        for k in ca[key]:
            assert torch.equal(ca[key][k], cb[key][k]), f"{key}.{k} differs between identical seeded runs"
    assert ca["epoch"] == 0 and ca["names"] == ["red", "green"] and ca["ema_updates"] >= 1
    assert {"optimizer", "scheduler", "rng", "train_args", "model_cfg"} <= set(ca)
    model = load_model(a.best)
    assert model.nc == 2 and model(torch.zeros(1, 3, 128, 128)).shape[-1] == 4 + 2


def test_without_validation_nothing_stops_early_and_best_is_the_latest(tiny_yaml, tmp_path):
    """Before: with val off every epoch scored fitness 0, so `patience` stopped the run and best.pt
    kept epoch 1's weights."""
    run = train(
        model="yolov8n", data=str(tiny_yaml), epochs=3, imgsz=128, batch=8, workers=0, device="cpu",
        val=False, patience=1, plots=False, project=str(tmp_path), name="noval",
    )  # fmt: skip
    assert [r["epoch"] for r in _rows(run.save_dir / "results.csv")] == ["1", "2", "3"]
    best, last = load_checkpoint(run.best), load_checkpoint(run.last)
    assert best["epoch"] == last["epoch"] == 2
    for k, v in last["model"].items():
        assert torch.equal(v, best["model"][k]), k


# `lrnet train` that SIGKILLs itself at the 4th training step (backward) after epoch 1 saved last.pt:
# in the middle of epoch 2 (8 steps), at the same point on any machine, quiet or busy.
KILLED_TRAIN = """
import os, signal, sys
from pathlib import Path

import torch

from lrnet.cli import main

last, backward, steps = Path(sys.argv[1]), torch.Tensor.backward, []


def backward_then_die_mid_epoch_2(self, *args, **kwargs):
    if last.is_file():
        steps.append(1)
        if len(steps) == 4:
            os.kill(os.getpid(), signal.SIGKILL)
    return backward(self, *args, **kwargs)


torch.Tensor.backward = backward_then_die_mid_epoch_2
sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_mid_epoch_then_resume_finishes(tiny_yaml, tmp_path):
    data_root = tmp_path / "data"
    shutil.copytree(tiny_yaml.parent, data_root)
    data_yaml = data_root / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace(str(tiny_yaml.parent), str(data_root)))
    args = [*COMMON, "--data", str(data_yaml), "--epochs", "3", "--batch", "2", "--project", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    last = tmp_path / "run" / "weights" / "last.pt"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_TRAIN, str(last), "train", *args, "--name", "run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a safety net against a hang, far above a busy 2-core machine's time
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert load_checkpoint(last)["epoch"] == 0, "the kill came after epoch 2 was saved: not mid-epoch"
    assert [r["epoch"] for r in _rows(tmp_path / "run" / "results.csv")] == ["1"]

    resume = subprocess.run(
        [sys.executable, "-m", "lrnet.cli", "train", "--resume", str(last), "--device", "cpu"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a safety net, as above
    )
    assert resume.returncode == 0, resume.stderr[-3000:]
    assert [r["epoch"] for r in _rows(tmp_path / "run" / "results.csv")] == ["1", "2", "3"]
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["train_args"]["epochs"] == 3
    assert not list(last.parent.glob("*.tmp")), "a temporary checkpoint file was left behind"


def test_torchrun_two_ranks_gloo_identical_weights_and_each_image_once(tiny_yaml, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "lrnet.cli",
        "train",
        *COMMON,
        "--data",
        str(tiny_yaml),
        "--epochs",
        "2",
        "--batch",
        "8",
        "--project",
        str(tmp_path),
        "--name",
        "ddp",
        "--record-seen",
        "--threads",
        "1",  # the ranks' weights are compared bit for bit
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run = tmp_path / "ddp"
    hashes = [(run / f"weights_rank{r}.sha256").read_text().strip() for r in (0, 1)]
    assert hashes[0] == hashes[1]
    n_train = 16  # divisible by 2: DistributedSampler adds no padding duplicates
    for epoch in (1, 2):
        seen = [
            [int(v) for v in (run / f"seen_rank{r}_epoch{epoch}.txt").read_text().split()] for r in (0, 1)
        ]
        assert len(seen[0]) == len(seen[1]) == n_train // 2
        assert (
            sorted(seen[0] + seen[1]) == sorted(set(seen[0] + seen[1]))
            and len(set(seen[0] + seen[1])) == n_train
        )
    assert [r["epoch"] for r in _rows(run / "results.csv")] == ["1", "2"]  # rank 0 alone writes
    assert load_checkpoint(run / "weights" / "last.pt")["epoch"] == 1


def test_cpu_training_runs_channels_last_and_saves_plain_nchw_tensors(tiny_yaml, tmp_path):
    """Convolutions train in oneDNN's NHWC layout on the CPU (lrnet.runtime.device.fast_memory_format);
    checkpoints still hold default-layout tensors for every reader."""
    seen = {}

    def on_start(trainer):
        convs = [p for p in trainer.model.parameters() if p.dim() == 4 and p.shape[-1] > 1]
        seen["channels_last"] = bool(convs) and all(
            p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs
        )

    run = train(
        model="yolov8n", data=str(tiny_yaml), epochs=1, imgsz=128, batch=8, workers=0, device="cpu",
        project=str(tmp_path), plots=False, val=False, callbacks={"on_train_start": on_start},
    )  # fmt: skip
    assert seen["channels_last"]
    ckpt = load_checkpoint(run.last)
    for key in ("model", "train_model"):
        assert all(v.is_contiguous() for v in ckpt[key].values()), key
