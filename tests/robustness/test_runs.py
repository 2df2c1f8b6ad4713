"""Runs own their folder: resume target, lock, stale temporaries, bad checkpoints, Ctrl-C, full disk."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import torch

from lrnet.cli import main
from lrnet.training.trainer import train
from lrnet.weights.checkpoint import load_checkpoint, save_checkpoint
from tests.robustness import hostile

pytestmark = pytest.mark.timeout(300)

TINY = dict(model="yolov8n", imgsz=64, batch=2, workers=0, device="cpu", plots=False, warmup_min_iters=0)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A one-epoch run (epochs=2 in its args, so it can be resumed); returns its weights/last.pt."""
    from tests.fixtures.predict_fixtures import make_yolo_dataset

    root = tmp_path_factory.mktemp("run")
    data = make_yolo_dataset(root / "ds", nc=3, n=2, size=64)
    result = train(data=str(data), epochs=1, project=str(root / "runs"), name="r", **TINY)
    ckpt = load_checkpoint(result.last)
    ckpt["train_args"]["epochs"] = 2  # one more epoch to resume
    ckpt["train_args"]["val"] = False  # resumed epochs skip validation: the suite stays fast
    save_checkpoint(result.last, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    return result.last


def _one_line_error(capsys, *needles: str) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


def _copy_run(last: Path, dest: Path) -> Path:
    shutil.copytree(last.parent.parent, dest)
    ckpt = load_checkpoint(dest / "weights" / "last.pt")
    ckpt["save_dir"] = str(dest.resolve())  # what a run trained in `dest` records
    save_checkpoint(
        dest / "weights" / "last.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version")}
    )
    return dest / "weights" / "last.pt"


def test_resume_outside_its_run_folder_writes_a_new_folder(finished_run, tmp_path, capsys):
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir(parents=True)
    copy = downloads / "last.pt"
    shutil.copy(finished_run, copy)
    home = downloads.parent
    (home / "args.yaml").write_text("precious: true\n")
    (home / "results.csv").write_text("epoch\n1\n2\n")
    ckpt = load_checkpoint(copy)
    ckpt["train_args"]["project"] = str(tmp_path / "runs")
    save_checkpoint(copy, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    assert main(["train", "--resume", str(copy), "--device", "cpu"]) == 0
    assert (home / "args.yaml").read_text() == "precious: true\n"
    assert (home / "results.csv").read_text() == "epoch\n1\n2\n"
    assert not (home / "weights").exists()
    assert "resuming into a new run folder" in capsys.readouterr().out
    new_last = tmp_path / "runs" / "r" / "weights" / "last.pt"
    assert load_checkpoint(new_last)["epoch"] == 1


def test_resume_in_place_takes_over_a_stale_lock_and_cleans_temporaries(finished_run, tmp_path, capsys):
    from lrnet.runtime.run_lock import RunLock

    last = _copy_run(finished_run, tmp_path / "run")
    with RunLock(tmp_path / "run"):  # a live writer: the second one is refused
        assert main(["train", "--resume", str(last), "--device", "cpu"]) == 2
        _one_line_error(capsys, "is in use by another process", str(tmp_path / "run"))
    (tmp_path / "run" / ".lock").write_text("999999 deadhost\n")  # left by a killed process
    junk = [last.parent / ".last.pt.abc123.tmp", last.parent.parent / ".results.csv.x.tmp"]
    for j in junk:
        j.write_bytes(b"x" * 1000)
    with pytest.warns(UserWarning, match="taking over the lock left by process 999999"):
        assert main(["train", "--resume", str(last), "--device", "cpu"]) == 0
    assert not any(j.exists() for j in junk)
    assert "removed 2 temporary file(s)" in capsys.readouterr().out
    assert load_checkpoint(last)["epoch"] == 1
    rows = (tmp_path / "run" / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert (tmp_path / "run" / ".lock").read_text() == ""  # released


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_non_finite_weights_refused_everywhere(finished_run, tmp_path, kind, capsys, tiny_data):
    ckpt = load_checkpoint(finished_run)
    key = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][key] = torch.full_like(ckpt["model"][key], float(kind))
    bad = save_checkpoint(
        tmp_path / "bad.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version")}
    )
    for args in (
        ["val", "--weights", str(bad), "--data", str(tiny_data), "--imgsz", "64"],
        ["predict", "--weights", str(bad), "--source", str(tiny_data.parent / "images" / "val")],
        ["export", "--weights", str(bad), "--out", str(tmp_path / "x.onnx")],
        ["train", "--resume", str(bad), "--device", "cpu"],
    ):
        assert main(args) == 2, args
        _one_line_error(capsys, str(bad), "nan/inf")


def test_resuming_an_unbuildable_config_is_an_error(finished_run, tmp_path, capsys):
    ckpt = load_checkpoint(finished_run)
    ckpt["model_cfg"]["backbone"][0][2] = "NoSuchBlock"
    bad = save_checkpoint(
        tmp_path / "w" / "last.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version")}
    )
    assert main(["train", "--resume", str(bad), "--device", "cpu", "--project", str(tmp_path / "p")]) == 2
    _one_line_error(capsys, str(bad), "cannot be built")


def test_ctrl_c_names_the_checkpoint_to_resume(finished_run, tmp_path, capsys, monkeypatch):
    from lrnet.training import trainer as trainer_module

    last = _copy_run(finished_run, tmp_path / "run")

    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module.Trainer, "_train_one_epoch", interrupt)
    assert main(["train", "--resume", str(last), "--device", "cpu"]) == 130
    _one_line_error(capsys, "interrupted", f"resume with resume={last}")
    assert not (tmp_path / "run" / ".lock").read_text()  # the lock was released


def test_full_disk_is_one_line_and_keeps_the_previous_checkpoint(finished_run, tmp_path, monkeypatch, capsys):
    import lrnet.fileio as fileio

    last = _copy_run(finished_run, tmp_path / "run")
    before = last.read_bytes()
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Full(f) if "w" in mode and str(path).endswith(fileio.TMP_SUFFIX) else f

    monkeypatch.setattr(fileio, "open", fake_open, raising=False)
    assert main(["train", "--resume", str(last), "--device", "cpu"]) == 2
    _one_line_error(capsys, "no space left on the device holding")
    assert last.read_bytes() == before
    assert not list(last.parent.glob("*.tmp"))


def test_project_that_is_a_file(tmp_path, tiny_data, capsys):
    (tmp_path / "proj").write_text("a file")
    args = ["train", "--data", str(tiny_data), "--model", "yolov8n", "--imgsz", "64", "--epochs", "1"]
    assert main([*args, "--device", "cpu", "--project", str(tmp_path / "proj")]) == 2
    _one_line_error(capsys, str(tmp_path / "proj"))


def test_checkpoint_given_as_model_config(finished_run, tiny_data, capsys):
    args = ["train", "--data", str(tiny_data), "--model", str(finished_run), "--imgsz", "64", "--epochs", "1"]
    assert main([*args, "--device", "cpu"]) == 2
    _one_line_error(capsys, "is a checkpoint, not a model config")


def test_model_config_asking_for_absurd_memory(tmp_path, tiny_data, capsys):
    from importlib import resources

    text = resources.files("lrnet.cfg").joinpath("models", "yolov8n.yaml").read_text()
    huge = tmp_path / "huge-n.yaml"
    huge.write_text("scale: n\n" + text.replace("[0.33, 0.25, 1024]", "[0.33, 500.0, 1000000]"))
    assert "500.0" in huge.read_text()
    args = ["train", "--data", str(tiny_data), "--model", str(huge), "--imgsz", "64", "--epochs", "1"]
    assert main([*args, "--device", "cpu", "--project", str(tmp_path / "p")]) == 2
    _one_line_error(capsys, "parameters", "above the 1,000,000,000 limit")


@pytest.mark.parametrize("kind", ["empty", "truncated", "random", "foreign", "pickle", "torch-pickle"])
def test_bad_checkpoints_are_one_line_errors(finished_run, tmp_path, kind, capsys, tiny_data):
    bad = tmp_path / "bad.pt"
    marker = tmp_path / "code-ran"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated":
        bad.write_bytes(finished_run.read_bytes()[:5000])
    elif kind == "random":
        bad.write_bytes(bytes(range(256)) * 40)
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, bad)
    elif kind == "pickle":
        hostile.plain_pickle(bad, marker)
    else:
        hostile.malicious_pickle(bad, marker)
    for args in (
        ["val", "--weights", str(bad), "--data", str(tiny_data), "--imgsz", "64"],
        ["predict", "--weights", str(bad), "--source", str(tiny_data.parent / "images" / "val")],
        ["export", "--weights", str(bad), "--out", str(tmp_path / "x.onnx")],
        ["train", "--resume", str(bad), "--device", "cpu"],
    ):
        assert main(args) == 2, args
        _one_line_error(capsys, str(bad))
    assert not marker.exists(), "unpickling a hostile checkpoint ran code"
