"""Unit checks of the reliability helpers against independent computations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lrnet.errors import RunError
from lrnet.fileio import refuse_overwriting_inputs, remove_stale_temporaries, same_file
from lrnet.runtime.run_lock import RunLock
from lrnet.runtime.sources import output_stems


def test_output_stems_hand_worked():
    paths = [Path(p) for p in ("a/same.jpg", "a/same.png", "a/x.jpg", "b/x.jpg", "x_jpg_2.png", "u.jpg")]
    stems = output_stems(paths)
    assert stems == ["same_jpg", "same_png", "x_jpg", "x_jpg_3", "x_jpg_2", "u"]
    assert len(set(stems)) == len(stems)


def test_config_parameter_count_equals_the_built_model():
    from lrnet.nn import build_model, load_model_config
    from lrnet.nn.model import count_config_parameters

    for name in ("yolov8n", "lrnet-n"):
        built = sum(p.numel() for p in build_model(name, nc=3).parameters())
        assert count_config_parameters(load_model_config(name, nc=3)) == built


def test_same_file_sees_links(tmp_path):
    a = tmp_path / "a.pt"
    a.write_text("x")
    os.link(a, tmp_path / "hard.pt")
    (tmp_path / "soft.pt").symlink_to(a)
    assert same_file(a, tmp_path / "hard.pt") and same_file(a, tmp_path / "soft.pt")
    assert same_file(a, tmp_path / "sub" / ".." / "a.pt")
    assert not same_file(a, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="would destroy the input"):
        refuse_overwriting_inputs(tmp_path / "hard.pt", tmp_path / "other", a)


def test_run_lock_excludes_a_second_holder_and_releases(tmp_path):
    with RunLock(tmp_path) as lock:
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunError, match=f"in use by another process \\({os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert lock.took_over == ""
    assert (tmp_path / ".lock").read_text() == ""
    with RunLock(tmp_path) as again:  # released: taken without a warning
        assert again.took_over == ""


def test_stale_temporaries_only_ours_are_removed(tmp_path):
    ours = [tmp_path / ".last.pt.k2j3.tmp", tmp_path / ".results.csv.zz.tmp"]
    theirs = [tmp_path / "notes.tmp", tmp_path / "last.pt"]
    for p in ours + theirs:
        p.write_text("x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(ours)
    assert all(p.exists() for p in theirs)
