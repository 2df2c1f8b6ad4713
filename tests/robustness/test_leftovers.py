"""The first campaign's leftovers: a full disk mid-checkpoint, a split given as a number, a whole
float for an int option, an unreadable image in predict and in a data set, corrupt COCO boxes."""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path

import pytest
import torch

import lrnet.fileio as fileio
from lrnet.cli import main
from lrnet.data.coco import read_coco
from lrnet.data.formats import load_dataset_source
from lrnet.errors import ConfigError, RunError
from lrnet.training.train_config import TrainConfig, parse_option
from lrnet.weights.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.timeout(120)


def _error_line(capsys) -> str:
    """The one `lrnet ...: error:` line on stderr (progress bars aside)."""
    err = [line for line in capsys.readouterr().err.split("\n") if line.strip() and "%|" not in line]
    assert len(err) == 1, err
    return err[0]


# -- a full disk during a checkpoint write ----------------------------------------------------------
class _FillingDisk:
    """A file object whose device has `room` bytes left: the write that does not fit raises ENOSPC
    (after the writes before it went through, as on a real disk filling up)."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        if n > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= n
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("room", [0, 100, 1000, 20_000])
def test_disk_full_mid_checkpoint_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, room):
    """torch.save's zip writer turns a failed write into "unexpected pos" once part of the file went
    through (rooms 100 and 1000 here); either way it is the one "no space left" error."""
    last = tmp_path / "weights" / "last.pt"
    ckpt = {"model_cfg": {"nc": 1}, "model": {"w": torch.arange(5000, dtype=torch.float32)}, "epoch": 3}
    save_checkpoint(last, ckpt)
    before = last.read_bytes()
    real_open = open

    def filling_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return _FillingDisk(f, room) if "w" in mode and str(path).endswith(fileio.TMP_SUFFIX) else f

    monkeypatch.setattr(fileio, "open", filling_open, raising=False)
    with pytest.raises(RunError) as info:
        save_checkpoint(last, {**ckpt, "epoch": 4})
    message = str(info.value)
    assert message == f"no space left on the device holding {last}; free space and try again"
    assert last.read_bytes() == before and load_checkpoint(last)["epoch"] == 3
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]  # the temporary file is gone


def test_unrelated_errors_of_a_writer_are_not_called_a_full_disk(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(ValueError, match="bad payload"), fileio.atomic_write(target, "wb"):
        try:
            raise FileNotFoundError(errno.ENOENT, "handled")  # an OSError handled on the way
        except FileNotFoundError:
            raise ValueError("bad payload") from None
    assert not target.exists() and list(tmp_path.iterdir()) == []


# -- a data YAML split given as a number ------------------------------------------------------------
@pytest.mark.parametrize("value", ["5", "2.5", "true", "[images/train, 3]"])
@pytest.mark.parametrize("command", ["stats", "val", "train"])
def test_split_given_as_a_number_is_one_line_naming_the_yaml_and_key(
    value, command, tiny_data, tiny_weights, tmp_path, capsys
):
    text = tiny_data.read_text().replace("train: images/train", f"train: {value}")
    assert f"train: {value}" in text
    bad = tiny_data.with_name("bad.yaml")
    bad.write_text(text)
    args = {
        "stats": ["data", "stats", str(bad), "--split", "train"],
        "val": ["val", "--weights", str(tiny_weights), "--data", str(bad), "--split", "train"],
        "train": ["train", "--data", str(bad), "--model", "yolov8n", "--imgsz", "64", "--device", "cpu"],
    }[command]
    if command != "stats":
        args += ["--project", str(tmp_path / "p")]
    assert main(args) == 2
    line = _error_line(capsys)
    assert str(bad) in line and "'train" in line and "not a path" in line, line


def test_a_quoted_number_is_read_as_a_folder(tiny_data):
    """The error's advice works: `train: '5'` names the folder 5."""
    root = tiny_data.parent
    (root / "5").mkdir()
    for sub in ("images", "labels"):
        (root / sub).rename(root / "5" / sub)
    tiny_data.write_text(tiny_data.read_text().replace("train: images/train", "train: '5'"))
    assert len(load_dataset_source(tiny_data, "train", verbose=False)) == 6  # both splits' images under 5/


# -- a whole float for an int option --------------------------------------------------------------
def test_whole_float_for_an_int_option_is_read_as_the_int(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("epochs: 10.0\nbatch: 4.0\nimgsz: 64.0\n")
    tc = TrainConfig.from_yaml(cfg)
    assert (tc.epochs, tc.batch, tc.imgsz) == (10, 4, 64)
    assert all(type(v) is int for v in (tc.epochs, tc.batch, tc.imgsz))
    assert list(range(tc.epochs)) == list(range(10))  # what the trainer does with it
    assert parse_option("epochs", "10.0") == 10 and type(parse_option("epochs", "1e2")) is int


def test_fractional_float_for_an_int_option_is_one_clear_error(tmp_path, tiny_data, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("epochs: 10.5\n")
    common = ["--data", str(tiny_data), "--device", "cpu", "--project", str(tmp_path / "p")]
    assert main(["train", "--cfg", str(cfg), *common]) == 2
    assert "epochs=10.5 is not a whole number; use e.g. epochs=10" in _error_line(capsys)
    with pytest.raises(SystemExit) as exited:  # a flag's value is refused by argparse, as 'abc' is
        main(["train", "--epochs", "10.5", *common])
    assert exited.value.code == 2
    assert "epochs=10.5 is not a whole number" in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(ConfigError, match=r"epochs=10\.5 is not a whole number"):
        TrainConfig(epochs=10.5)


# -- an unreadable image ----------------------------------------------------------------------------
def _deny(monkeypatch, *denied: Path) -> None:
    """Opening any of `denied` raises PermissionError, as chmod 000 does for a user other than root."""
    import lrnet.data.images as images

    real_open = open
    names = {str(p) for p in denied}

    def guarded_open(path, *args, **kwargs):
        if str(path) in names:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(images, "open", guarded_open, raising=False)


@pytest.mark.parametrize("how", ["chmod", "patched open"])
def test_predict_skips_and_counts_an_unreadable_image(
    how, tiny_data, tiny_weights, tmp_path, monkeypatch, capsys
):
    src = tiny_data.parent / "images" / "val"
    locked = src / "im1.png"
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root reads a chmod 000 file; the 'patched open' case covers it")
        locked.chmod(0)
    else:
        _deny(monkeypatch, locked)
    args = ["predict", "--weights", str(tiny_weights), "--source", str(src), "--imgsz", "64"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*args, "--project", str(tmp_path / "p"), "--name", "x"]) == 0
    messages = [str(w.message) for w in caught]
    assert any("im1.png" in m and "permission denied" in m for m in messages), messages
    out = capsys.readouterr().out
    assert "2 images" in out and "1 unreadable images skipped" in out and "im1.png" in out
    assert sorted(p.name for p in (tmp_path / "p" / "x").iterdir()) == ["im0.png", "im2.png"]


def test_data_set_skips_and_counts_an_unreadable_image(tiny_data, monkeypatch):
    locked = tiny_data.parent / "images" / "val" / "im2.png"
    _deny(monkeypatch, locked)
    with pytest.warns(UserWarning, match=r"im2.png.*permission denied"):
        src = load_dataset_source(tiny_data, "val", verbose=False)
    assert len(src) == 2 and src.counter.skipped == {"unreadable image": 1}


# -- corrupt COCO boxes ------------------------------------------------------------------------------
def test_coco_boxes_that_are_not_four_finite_numbers_are_dropped_and_counted(tmp_path, capsys):
    bboxes = {
        1: [10, 10, 4, 4],  # the one good box
        2: [float("nan"), 10, 4, 4],
        3: [10, 10, float("inf"), 4],
        4: [10, 10, -4, 4],
        5: [10, 10, "abc", 4],
        6: [10, 10, 4],
        7: None,
        8: "10 10 4 4",
        9: [10, True, 4, 4],
    }
    anns = [{"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in bboxes.items()]
    anns.append({"id": 10, "image_id": 1, "category_id": 1})  # no bbox at all
    gt = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": anns,
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))  # writes NaN and Infinity, which Python's reader accepts
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = read_coco(path)
    assert src.records[0].boxes.tolist() == [[10, 10, 14, 14]]
    assert dict(src.counter.dropped) == {"non-finite value": 2, "zero size": 1, "bad bbox": 6}
    messages = [str(w.message) for w in caught]
    for ann_id in range(2, 11):
        assert any(f"{path} (annotation {ann_id})" in m for m in messages), ann_id
    assert main(["data", "stats", str(path), "--out", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "boxes: 1 " in out and "mean 4.0 px" in out and "nan" not in out
    assert "dropped 9 boxes: 6 bad bbox, 2 non-finite value, 1 zero size" in out
