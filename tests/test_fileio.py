"""Atomic writes and bounded YAML (lrnet.fileio)."""

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
    parse_yaml,
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
