"""`lrnet info CHECKPOINT`: the printed and JSON values are the ones the checkpoint was written with.

One checkpoint is written by `save_checkpoint` with known content, one by a tiny training run; hostile
and foreign files (missing, folder, truncated, empty, state dict, ultralytics, pickled code, ...) each
give one error line naming the file and the fix, and exit 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from lrnet.cli import main
from lrnet.nn import build_model
from lrnet.training.train_config import TrainConfig
from lrnet.weights.checkpoint import load_checkpoint, save_checkpoint
from tests.fixtures.tiny_data import write_tiny_yolo
from tests.fixtures.ultralytics_fixture import write_os_system_checkpoint, write_ultralytics_checkpoint

NAMES = ["car", "person", "bus"]
ARGS = dict(
    model="lrnet-n",
    data="d.yaml",
    epochs=10,
    imgsz=320,
    batch=8,
    box_loss="rsiou+dotd:ratio=0.5",
    assign_metric="nwd",
    assign_outside=True,
    assign_min_side=4.0,
    similarity_scale=9.5,
    optimizer="adamw",
    seed=7,
)
METRICS = {"AP": 0.12, "AP50": 0.34, "AP75": 0.05, "APvt": -1.0, "AR": 0.5, "ARvt": -1.0}


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> tuple[Path, dict, int]:
    """A checkpoint in the trainer's layout with known values; (path, what was saved, parameters)."""
    torch.manual_seed(0)
    model = build_model("lrnet-n", nc=3)
    ckpt = {
        "model_cfg": model.cfg,
        "names": NAMES,
        "model": model.state_dict(),
        "train_model": model.state_dict(),
        "ema_updates": 123,
        "optimizer": {},
        "scheduler": {},
        "epoch": 4,
        "best_fitness": 0.1234,
        "best_epoch": 2,
        "train_args": TrainConfig(**ARGS).to_dict(),
        "metrics": METRICS,
        "date": "2025-01-02T03:04:05+00:00",
        "save_dir": "/runs/train/x",
        "lrnet_version": "0.1.0",
    }
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", ckpt)
    return path, ckpt, sum(p.numel() for p in model.parameters())


def _info(capsys, *argv: str) -> str:
    assert main(["info", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def test_text_report_shows_what_was_saved(known, capsys):
    path, _, params = known
    lines = _info(capsys, str(path)).splitlines()
    assert lines[0].startswith(f"{path}: lrnet checkpoint (format version 1, ")
    rows = {line[:13].strip(): line[13:] for line in lines[1:]}
    assert rows["model"] == f"lrnet-n (scale n), {params:,} parameters"
    assert rows["weights"] == "all finite"
    assert rows["classes"] == "3: car, person, bus"
    assert rows["image size"] == "320"
    assert rows["epochs"] == "saved after epoch 5 of 10; best fitness 0.1234 (0.1 AP50 + 0.9 AP) at epoch 3"
    assert rows["metrics"].startswith(
        "AP 0.1200  AP50 0.3400  AP75 0.0500  APvt n/a (validation after epoch 5"
    )
    assert "AR 0.5000  ARvt n/a" in lines[lines.index(next(x for x in lines if x.startswith("metrics"))) + 1]
    assert rows["box loss"] == "rsiou+dotd:ratio=0.5"
    assert rows["assigner"] == "task-aligned on nwd (assign_outside on, min side 4 px)"
    assert rows["val NMS"] == "iou"
    assert rows["sim. scale"] == "9.5 px"
    assert rows["data"] == "d.yaml"
    assert rows["training"] == (
        "batch 8, optimizer adamw, seed 7, EMA weights (123 updates), resumable (training state saved)"
    )
    assert rows["saved"] == "2025-01-02T03:04:05+00:00 in /runs/train/x"
    assert rows["lrnet"] == "0.1.0"


def test_json_report_matches_the_saved_values(known, capsys):
    path, ckpt, params = known
    data = json.loads(_info(capsys, str(path), "--json"))
    assert data["file"] == str(path) and data["file_bytes"] == path.stat().st_size
    assert (data["format"], data["format_version"]) == ("lrnet-checkpoint", 1)
    assert (data["model"], data["scale"], data["nc"], data["names"]) == ("lrnet-n", "n", 3, NAMES)
    assert data["parameters"] == params and data["weights_finite"] is True
    assert (data["imgsz"], data["epochs_trained"], data["epochs_planned"]) == (320, 5, 10)
    assert (data["best_epoch"], data["best_fitness"]) == (3, 0.1234)
    assert data["metrics"] == METRICS
    assert (data["box_loss"], data["box_loss_from_run"]) == ("rsiou+dotd:ratio=0.5", True)
    assert (data["assign_metric"], data["assign_outside"], data["similarity_scale"]) == ("nwd", True, 9.5)
    assert data["assign_min_side"] == 4.0
    assert (data["batch"], data["optimizer"], data["seed"], data["ema_updates"]) == (8, "adamw", 7, 123)
    assert data["resumable"] is True and data["converted_from"] is None
    assert (data["date"], data["save_dir"], data["lrnet_version"]) == (
        "2025-01-02T03:04:05+00:00",
        "/runs/train/x",
        "0.1.0",
    )
    assert data["train_args"] == ckpt["train_args"]


def test_minimal_checkpoint_reads_not_recorded_and_the_models_default_loss(tmp_path, capsys):
    model = build_model("yolov8n", nc=2)
    path = save_checkpoint(tmp_path / "w.pt", {"model_cfg": model.cfg, "model": model.state_dict()})
    text = _info(capsys, str(path))
    assert "classes      2 (names not recorded)" in text and "image size   not recorded" in text
    assert "box loss     ciou (the model's default)" in text and "weights only (not resumable)" in text
    assert "lrnet        version not recorded" in text
    data = json.loads(_info(capsys, str(path), "--json"))
    assert data["names"] is None and data["epochs_trained"] is None and data["metrics"] == {}


def test_diverged_weights_are_reported_not_refused(tmp_path, capsys):
    model = build_model("yolov8n", nc=1)
    state = model.state_dict()
    state["layers.0.conv.weight"][0, 0, 0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.pt", {"model_cfg": model.cfg, "model": state, "names": ["a"]})
    assert "NOT USABLE: weight 'layers.0.conv.weight' of 'model' holds 1 nan/inf" in _info(capsys, str(path))
    data = json.loads(_info(capsys, str(path), "--json"))
    assert data["weights_finite"] is False and "nan/inf" in data["weights_problem"]


def test_model_options_are_refused_with_a_checkpoint(known, capsys):
    path = str(known[0])
    for flag, value in (("--nc", "3"), ("--imgsz", "320")):
        assert main(["info", path, flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert "applies to a model config, not to the checkpoint" in err and path in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """best.pt of a 1-epoch run on 4 tiny images with a DotD mixture and the NWD assigner."""
    from lrnet.training.trainer import train

    root = tmp_path_factory.mktemp("run")
    data = write_tiny_yolo(root / "data", n_train=4, n_val=2, size=64)
    result = train(
        model="yolov8n",
        data=str(data),
        epochs=1,
        imgsz=64,
        batch=4,
        workers=0,
        device="cpu",
        plots=False,
        tensorboard=False,
        project=str(root),
        name="a",
        box_loss="rsiou+dotd:ratio=0.5",
        assign_metric="nwd",
    )
    assert result.best is not None
    return result.best


def test_a_trained_checkpoint_is_described_from_its_own_record(trained, capsys):
    ckpt = load_checkpoint(trained)
    data = json.loads(_info(capsys, str(trained), "--json"))
    assert data["model"] == ckpt["model_cfg"]["name"] == "yolov8n"
    assert data["names"] == ckpt["names"] == ["red", "green"] and data["nc"] == 2
    assert data["imgsz"] == ckpt["train_args"]["imgsz"] == 64
    assert data["epochs_trained"] == ckpt["epoch"] + 1 == 1 and data["epochs_planned"] == 1
    assert data["best_epoch"] == ckpt["best_epoch"] + 1 and data["best_fitness"] == ckpt["best_fitness"]
    assert data["metrics"] == ckpt["metrics"] and "AP50" in data["metrics"]
    assert data["box_loss"] == "rsiou+dotd:ratio=0.5" and data["assign_metric"] == "nwd"
    assert data["date"] == ckpt["date"] and data["resumable"] is True
    text = _info(capsys, str(trained))
    assert "classes      2: red, green" in text and "image size   64" in text
    assert (
        f"best fitness {ckpt['best_fitness']:.4f}" in text and f"AP50 {ckpt['metrics']['AP50']:.4f}" in text
    )
    assert f"saved        {ckpt['date']}" in text


def _hostile(tmp_path: Path, known_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, text the one error line must hold)."""
    good = known_path.read_bytes()
    sd = load_checkpoint(known_path)["model"]
    files: dict[str, tuple[Path, str]] = {"missing": (tmp_path / "nope.pt", "no such checkpoint file")}
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(good)
    files["folder"] = (run, f"is a folder, not a checkpoint file; give the .pt file itself (e.g. {run}")
    (tmp_path / "trunc.pt").write_bytes(good[: len(good) // 2])
    files["truncated"] = (tmp_path / "trunc.pt", "a damaged torch file (truncated or corrupt")
    (tmp_path / "empty.pt").write_bytes(b"")
    files["empty"] = (tmp_path / "empty.pt", "an empty file (0 bytes")
    (tmp_path / "notes.pt").write_text("not weights\n")
    files["text"] = (tmp_path / "notes.pt", "not a torch file")
    torch.save(sd, tmp_path / "sd.pt")
    files["state_dict"] = (tmp_path / "sd.pt", f"a plain state dict of {len(sd)} tensors (e.g. layers.0.")
    torch.save({"state_dict": sd}, tmp_path / "wrapped.pt")
    files["wrapped_state_dict"] = (tmp_path / "wrapped.pt", "tensors under 'state_dict'")
    torch.save([1, 2], tmp_path / "list.pt")
    files["list"] = (tmp_path / "list.pt", "holds a list, not a checkpoint")
    write_ultralytics_checkpoint(tmp_path / "yolov8n.pt")
    files["ultralytics"] = (tmp_path / "yolov8n.pt", "an ultralytics YOLOv8 checkpoint, not an lrnet one")
    write_os_system_checkpoint(tmp_path / "evil.pt", tmp_path / "pwned")
    files["pickled_code"] = (tmp_path / "evil.pt", "holds pickled Python objects (posix.system")
    newer = load_checkpoint(known_path) | {"version": 99}
    torch.save(newer, tmp_path / "newer.pt")
    files["newer"] = (tmp_path / "newer.pt", "checkpoint version 99 is newer than this lrnet")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07onnx")
    files["onnx"] = (tmp_path / "m.onnx", "an ONNX export, not an lrnet checkpoint")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.pt")
        files["fifo"] = (tmp_path / "pipe.pt", "not a regular file")
    return files


def test_hostile_and_foreign_files_give_one_line_naming_the_file(known, tmp_path, capsys):
    for name, (path, needle) in _hostile(tmp_path, known[0]).items():
        for extra in ([], ["--json"]):
            assert main(["info", str(path), *extra]) == 2, name
            captured = capsys.readouterr()
            err = [line for line in captured.err.splitlines() if line.strip()]
            assert captured.out == "" and len(err) == 1, (name, err)
            assert err[0].startswith(f"lrnet info: error: {path}"), (name, err[0])
            assert needle in err[0], (name, err[0])
            assert len(err[0]) < 600, (name, err[0])
    assert "convert-weights" in main_error(["info", str(tmp_path / "yolov8n.pt")], capsys)
    assert "weights=" in main_error(["info", str(tmp_path / "sd.pt")], capsys)
    assert not (tmp_path / "pwned").exists(), "the pickled payload ran"


def main_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err
