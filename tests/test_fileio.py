"""Atomic writes, bounded YAML and the output-is-never-an-input rule (lrnet.fileio)."""

from __future__ import annotations

import errno
import os

import pytest
import yaml

from lrnet.errors import ConfigError, InputFileNotFoundError, RunError
from lrnet.fileio import (
    WRITE_POINTS,
    atomic_path,
    atomic_write,
    load_yaml,
    output_conflict,
    parse_yaml,
    refuse_overwriting_inputs,
    shorten,
    write_point_hook,
    write_text_atomic,
)


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as f:
        f.write("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_atomic_path_for_path_writers(tmp_path):
    target = tmp_path / "sub" / "img.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"


class StopWriteError(Exception):
    pass


@pytest.mark.parametrize("stop_at", WRITE_POINTS)
def test_write_point_hook_sees_every_point_in_order_and_a_stop_keeps_a_whole_file(tmp_path, stop_at):
    target = tmp_path / "a.txt"
    write_text_atomic(target, "old")
    seen = []

    def hook(point, tmp):
        seen.append((point, tmp.parent == tmp_path, tmp.exists()))
        if point == stop_at:
            raise StopWriteError

    with pytest.raises(StopWriteError), write_point_hook(hook):
        write_text_atomic(target, "new")
    upto = WRITE_POINTS[: WRITE_POINTS.index(stop_at) + 1]
    assert seen == [(p, True, p != "replaced") for p in upto]
    assert target.read_text() == ("new" if stop_at == "replaced" else "old")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # the temporary file is removed
    write_text_atomic(target, "after")  # outside the block: no hook
    assert len(seen) == len(upto) and target.read_text() == "after"


def test_full_disk_becomes_one_line_run_error(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(RunError, match="no space left") as info:
        write_text_atomic(tmp_path / "r.csv", "x")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_parse_yaml_matches_safe_load():
    text = "a: &x [1, 2, {b: 3}]\nc: *x\nd: 1.5e-3\ne: null\n"
    assert parse_yaml(text) == yaml.safe_load(text)
    assert parse_yaml("") is None


@pytest.mark.timeout(120)  # a safety net: an expanding check would run for hours, not fail
def test_billion_laughs_refused_before_expansion(monkeypatch):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")

    def construct_document(self, node):
        raise AssertionError("the document was constructed: 10**10 nodes")

    monkeypatch.setattr(yaml.SafeLoader, "construct_document", construct_document)
    with pytest.raises(ConfigError, match="alias"):
        parse_yaml("\n".join(lines), origin="bomb.yaml")


def test_python_tags_refused():
    with pytest.raises(ConfigError, match=r"evil\.yaml"):
        parse_yaml("!!python/object/apply:os.system ['touch /tmp/pwned']", origin="evil.yaml")


def test_load_yaml_hostile_files(tmp_path):
    with pytest.raises(InputFileNotFoundError):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_yaml(tmp_path)
    binary = tmp_path / "best.pt"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00\x80")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_yaml(binary)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_yaml(broken)
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" * 100)
    with pytest.raises(ConfigError, match="too large"):
        load_yaml(big, max_bytes=100)


def test_shorten_bounds_messages():
    assert shorten("a\nb") == "a b"
    assert len(shorten("x" * 10_000)) == 200


@pytest.fixture
def tree(tmp_path):
    """data/ (a.pt, images/x.png), a sibling data2/ whose name shares data/'s prefix, and links."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "a.pt").write_bytes(b"weights")
    (data / "images" / "x.png").write_bytes(b"png")
    (tmp_path / "data2").mkdir()
    (tmp_path / "file_link.pt").symlink_to(data / "a.pt")
    (tmp_path / "dir_link").symlink_to(data)
    (tmp_path / "deep_link").symlink_to(data / "images")
    os.link(data / "a.pt", tmp_path / "hard.pt")
    return tmp_path


@pytest.mark.parametrize(
    ("out", "source", "how"),
    [
        ("data/a.pt", "data/a.pt", "is"),  # same spelling
        ("data/images/../a.pt", "data/a.pt", "is"),  # `..`
        ("file_link.pt", "data/a.pt", "is"),  # symlink to the file
        ("data/a.pt", "file_link.pt", "is"),  # the input given through the link
        ("hard.pt", "data/a.pt", "is"),  # hard link: another name of one inode
        ("dir_link", "data", "is"),  # symlink to the folder
        ("data/new.pt", "data", "inside"),  # a new file in an input folder
        ("dir_link/images/new/deeper.png", "data/images", "inside"),  # new path under a linked folder
        ("data/nope/../images/y.png", "data/images", "inside"),  # `..` after a missing folder
        ("deep_link/../a.pt", "data/a.pt", "is"),  # `..` after a symlink: physically data/, not ./
        ("data2/../dir_link/../data/a.pt", "hard.pt", "is"),
        ("data", "data/a.pt", "contains"),  # the output folder holds the input file
        ("dir_link", "data/images/x.png", "contains"),
        (".", "data/images", "contains"),  # relative to the working folder
        ("data2/a.pt", "data/a.pt", None),  # data2 shares data's prefix, not its folder
        ("data2", "data", None),
        ("data/b.pt", "data/a.pt", None),  # a new file beside an input file
        ("new/out", "data/images", None),
    ],
)
def test_output_conflict_every_spelling(tree, monkeypatch, out, source, how):
    monkeypatch.chdir(tree)
    assert output_conflict(out, source) == how
    assert output_conflict(tree / out, tree / source) == how  # absolute spellings agree


def test_output_conflict_by_inode_when_paths_differ(tree, monkeypatch):
    """A folder reached by a spelling `resolve` cannot see through (a bind mount) is found by inode."""
    import lrnet.fileio as fileio

    data, alias = (tree / "data").resolve(), tree / "mount"
    alias.mkdir()
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # `mount` behaves as a bind mount of data/
        return real_stat(data if os.fspath(path) == str(alias) else path, *args, **kwargs)

    monkeypatch.setattr(fileio.os, "stat", stat)
    assert output_conflict(alias / "new.png", data) == "inside"
    assert output_conflict(alias, data) == "is"
    assert output_conflict(alias, data / "images") == "contains"
    assert output_conflict(alias / "new.png", tree / "data2") is None


def test_refusal_names_output_input_and_fix(tree):
    data = tree / "data"
    with pytest.raises(ConfigError) as err:
        refuse_overwriting_inputs(tree / "hard.pt", None, tree / "data2", data / "a.pt")
    msg = str(err.value)
    assert f"output {tree / 'hard.pt'} is the input file {data / 'a.pt'}" in msg
    assert "would destroy the input; choose another output path" in msg
    with pytest.raises(
        RunError, match=f"lies inside the input folder {data / 'images'}.*choose an output outside"
    ):
        refuse_overwriting_inputs(data / "images" / "run", data / "images", error=RunError)
    with pytest.raises(ConfigError, match=f"output {data} contains the input file {data / 'a.pt'}"):
        refuse_overwriting_inputs(data, data / "a.pt")
    refuse_overwriting_inputs(tree / "data2" / "out", data, data / "a.pt", None, "")  # clear: no error
    assert "--" not in msg  # a library message names no CLI flag
