"""No input is ever an output: every writer refuses an output that is, holds or lies inside an input.

Each case runs the CLI in-process (`lrnet.cli.main`) with an output spelled over something the
command reads (the same path, a relative or `..` spelling, a symlink, a hard link, an output folder
holding the input, an output inside an input folder) and checks one error line, exit 2, and a
source tree that is byte for byte what it was (every file hashed before and after).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from lrnet.cli import main
from lrnet.data.coco import write_coco
from lrnet.data.formats import load_dataset_source

pytestmark = pytest.mark.timeout(120)


def tree_hash(root: Path) -> dict[str, str]:
    """Every entry under `root`: relative path -> sha256 of a file, a symlink's target, or "dir"."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def refused(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI; it must exit 2 with exactly one stderr line holding every needle."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2, argv
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    for needle in needles:
        assert str(needle) in err[0], err[0]
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def yolo(tmp_path, tiny_data) -> Path:
    """A YOLO set whose splits are `train/images`, `val/images` (not the `images/<split>` that
    `data tile` writes): returns its root, holding data.yaml; the label caches already written."""
    root = tmp_path / "yolo"
    for split in ("train", "val"):
        shutil.copytree(tiny_data.parent / "images" / split, root / split / "images")
        shutil.copytree(tiny_data.parent / "labels" / split, root / split / "labels")
    (root / "data.yaml").write_text("path: .\ntrain: train/images\nval: val/images\nnames: [c0, c1, c2]\n")
    for split in ("train", "val"):
        load_dataset_source(root / "data.yaml", split, verbose=False)  # the reader's own label cache
    return root


@pytest.fixture
def coco(tmp_path, tiny_data) -> Path:
    """A COCO set laid out flat: train.json beside its images (the JSON's folder is the image folder)."""
    root = tmp_path / "coco"
    root.mkdir()
    source = load_dataset_source(tiny_data, "train", verbose=False)
    for r in source.records:
        r.im_file = str(shutil.copy(r.im_file, root / Path(r.im_file).name))
    write_coco(source, root / "train.json")
    return root


@pytest.fixture
def weights_copy(tmp_path, tiny_weights) -> Path:
    """A private copy of the checkpoint (the session one is shared by other tests)."""
    (tmp_path / "w").mkdir()
    return Path(shutil.copy(tiny_weights, tmp_path / "w" / "victim.pt"))


# ------------------------------------------------------------------------------ data tile
@pytest.mark.parametrize(
    ("out", "how"),
    [
        ("{root}", "contains the input file {root}/data.yaml"),  # OUT over the source
        ("{root}/train/images/tiles", "lies inside the input folder {root}/train/images"),
        ("{tmp}/link", "contains the input file {root}/data.yaml"),  # a symlink to the source
        ("..", "contains the input file ../data.yaml"),  # relative, from inside the source
    ],
)
def test_tile_over_its_yolo_source(yolo, tmp_path, monkeypatch, capsys, out, how):
    (tmp_path / "link").symlink_to(yolo)
    monkeypatch.chdir(yolo / "train")
    before = tree_hash(yolo)
    src = "../data.yaml" if out == ".." else yolo / "data.yaml"
    fmt = {"root": yolo, "tmp": tmp_path}
    refused(capsys, ["data", "tile", src, out.format(**fmt)], "output", how.format(**fmt))
    assert tree_hash(yolo) == before


def test_tile_output_hard_linked_to_the_source_yaml(yolo, tmp_path, capsys):
    out = tmp_path / "tiles"
    out.mkdir()
    os.link(yolo / "data.yaml", out / "data.yaml")
    before = tree_hash(yolo)
    refused(capsys, ["data", "tile", yolo / "data.yaml", out], f"is the input file {yolo / 'data.yaml'}")
    assert tree_hash(yolo) == before
    assert sorted(p.name for p in out.iterdir()) == ["data.yaml"]  # nothing written


@pytest.mark.parametrize("sub", ["", "sub"])
def test_tile_coco_json_into_its_own_folder(coco, capsys, sub):
    before = tree_hash(coco)
    out = coco / sub if sub else coco
    how = "lies inside the input folder" if sub else f"contains the input file {coco / 'train.json'}"
    refused(capsys, ["data", "tile", coco / "train.json", out], how)
    assert tree_hash(coco) == before


def test_tile_beside_the_splits_is_allowed(yolo, capsys):
    """The YAML's root is not an input: a new folder beside the split folders is a valid output."""
    before = tree_hash(yolo)
    assert main(["data", "tile", str(yolo / "data.yaml"), str(yolo / "tiles")]) == 0
    after = tree_hash(yolo)
    assert {k: v for k, v in after.items() if not k.startswith("tiles")} == before
    assert (yolo / "tiles" / "data.yaml").is_file()


# ------------------------------------------------------------------------------ data convert
@pytest.mark.parametrize(
    ("fmt_in", "fmt_out", "src", "dst", "how"),
    [
        ("coco", "coco", "{coco}/train.json", "{coco}", "contains the input file {coco}/train.json"),
        ("coco", "yolo", "{coco}/train.json", "{coco}", "contains the input file {coco}/train.json"),
        ("coco", "coco", "{coco}/train.json", "{tmp}/link.json", "is the input file"),  # symlink
        ("yolo", "coco", "{yolo}/data.yaml", "{yolo}/train/images/x.json", "lies inside the input folder"),
        ("yolo", "yolo", "{yolo}/data.yaml", "{yolo}/train", "contains the input folder {yolo}/train/images"),
    ],
)
def test_convert_onto_its_input(coco, yolo, tmp_path, capsys, fmt_in, fmt_out, src, dst, how):
    (tmp_path / "link.json").symlink_to(coco / "train.json")
    fmt = {"coco": coco, "yolo": yolo, "tmp": tmp_path}
    before = tree_hash(tmp_path)
    argv = ["data", "convert", "--from", fmt_in, "--to", fmt_out, src.format(**fmt), dst.format(**fmt)]
    refused(capsys, argv, how.format(**fmt))
    assert tree_hash(tmp_path) == before


# ------------------------------------------------------------------------------ data stats
@pytest.mark.parametrize(
    ("out", "how"),
    [
        ("{yolo}/data.yaml", "is the input file"),
        ("{yolo}/val/images/plot.png", "lies inside the input folder"),
    ],
)
def test_stats_plot_onto_the_data(yolo, capsys, out, how):
    before = tree_hash(yolo)
    refused(capsys, ["data", "stats", yolo / "data.yaml", "--out", out.format(yolo=yolo)], how)
    assert tree_hash(yolo) == before


# ------------------------------------------------------------------------------ convert-weights
@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink", "folder"])
def test_convert_weights_never_replaces_its_source(weights_copy, monkeypatch, capsys, spelling):
    folder = weights_copy.parent
    monkeypatch.chdir(folder)
    out = {
        "same": weights_copy,
        "relative": "./sub/../victim.pt",
        "symlink": folder / "link.pt",
        "hardlink": folder / "hard.pt",
        "folder": folder,
    }[spelling]
    (folder / "link.pt").symlink_to(weights_copy)
    os.link(weights_copy, folder / "hard.pt")
    before = tree_hash(folder)
    how = "contains the input file" if spelling == "folder" else "is the input file"
    refused(capsys, ["convert-weights", "victim.pt" if spelling == "relative" else weights_copy, out], how)
    assert tree_hash(folder) == before


# ------------------------------------------------------------------------------ export
def test_export_into_the_calibration_data_or_around_its_weights(yolo, weights_copy, capsys):
    before, w_before = tree_hash(yolo), tree_hash(weights_copy.parent)
    data = yolo / "data.yaml"
    out = yolo / "train" / "images" / "m.onnx"
    refused(capsys, ["export", "--weights", weights_copy, "--data", data, "--out", out], "lies inside")
    wrapper = weights_copy.parent.parent / "x.onnx"  # a folder named like the output, holding the weights
    wrapper.mkdir()
    moved = Path(shutil.move(weights_copy, wrapper / "victim.pt"))
    refused(capsys, ["export", "--weights", moved, "--out", wrapper], "contains the input file")
    assert tree_hash(yolo) == before and tree_hash(wrapper) == {"victim.pt": w_before["victim.pt"]}


# ------------------------------------------------------------------------------ predict
@pytest.mark.parametrize("case", ["inside", "symlink", "relative", "weights", "dataset"])
def test_predict_run_folder_off_its_inputs(yolo, weights_copy, tmp_path, monkeypatch, capsys, case):
    images = yolo / "val" / "images"
    (tmp_path / "link").symlink_to(images)
    monkeypatch.chdir(images)
    args = {
        "inside": ["--source", images, "--project", images],
        "symlink": ["--source", images, "--project", tmp_path / "link", "--name", "run"],
        "relative": ["--source", ".", "--project", "runs"],
        "weights": ["--source", images, "--project", weights_copy.parent.parent, "--name", "w", "--exist-ok"],
        "dataset": ["--source", yolo / "data.yaml", "--split", "val", "--project", images / "out"],
    }[case]
    how = "contains the input file" if case == "weights" else "lies inside the input folder"
    before = tree_hash(tmp_path)
    refused(capsys, ["predict", "--weights", weights_copy, "--imgsz", "64", "--save-txt", *args], how)
    assert tree_hash(tmp_path) == before


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only; under root (which writes anyway) it behaves as it does for a user."""
    made: list[Path] = []

    def under(path) -> bool:
        where = os.path.abspath(os.fspath(path))
        return any(where == str(m) or where.startswith(str(m) + os.sep) for m in made)

    def make(folder: Path) -> Path:
        folder.chmod(0o555)
        made.append(folder.resolve())
        return folder

    if os.geteuid() == 0:
        real_mkdir, real_open, real_access = os.mkdir, os.open, os.access

        def mkdir(path, *args, **kwargs):
            if under(path):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_mkdir(path, *args, **kwargs)

        def open_(path, flags, *args, **kwargs):
            if flags & os.O_CREAT and under(path):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        def access(path, mode, *args, **kwargs):
            return False if mode & os.W_OK and under(path) else real_access(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "access", access)
    yield make
    for folder in made:
        folder.chmod(0o755)


@pytest.mark.parametrize("case", ["new-run", "existing-run", "existing-run-txt"])
def test_predict_into_a_read_only_folder_is_one_line(yolo, tiny_weights, tmp_path, read_only, capsys, case):
    project = tmp_path / "ro"
    (project / "exp").mkdir(parents=True)
    read_only(project / "exp" if case.startswith("existing") else project)
    args = ["predict", "--weights", tiny_weights, "--source", yolo / "val" / "images", "--imgsz", "64"]
    args += ["--project", project]
    args += {"new-run": [], "existing-run": ["--exist-ok"], "existing-run-txt": ["--exist-ok", "--save-txt"]}[
        case
    ]
    where = project / "exp" if case.startswith("existing") else project / "exp2"
    line = refused(capsys, args, f"{where}", "choose another project= folder that is writable")
    assert "--project" not in line.split("error:", 1)[1]  # the library names no flag
    assert sorted(p.name for p in (project / "exp").iterdir()) == []


# ------------------------------------------------------------------------------ val, train, benchmark
def test_val_run_folder_over_a_split_folder(yolo, weights_copy, capsys):
    before = tree_hash(yolo)
    argv = ["val", "--weights", weights_copy, "--data", yolo / "data.yaml", "--imgsz", "64"]
    refused(
        capsys, [*argv, "--project", yolo / "val", "--name", "images", "--exist-ok"], "is the input folder"
    )
    refused(capsys, [*argv, "--project", weights_copy.parent.parent, "--name", "w", "--exist-ok"], "contains")
    assert tree_hash(yolo) == before


def test_train_never_writes_over_its_weights_or_data(yolo, weights_copy, capsys):
    """A run folder holding the weights it starts from would replace them with its own best.pt."""
    run = weights_copy.parent / "run"
    (run / "weights").mkdir(parents=True)
    start = Path(shutil.move(weights_copy, run / "weights" / "best.pt"))
    before, data_before = tree_hash(run), tree_hash(yolo)
    argv = ["train", "--data", yolo / "data.yaml", "--model", "yolov8n", "--imgsz", "64", "--epochs", "1"]
    argv += ["--batch", "2", "--workers", "0", "--device", "cpu", "--val", "false"]
    refused(
        capsys,
        [*argv, "--weights", start, "--project", run.parent, "--name", "run", "--exist-ok"],
        "contains",
    )
    refused(capsys, [*argv, "--project", yolo / "train" / "images"], "lies inside the input folder")
    assert tree_hash(run) == before and tree_hash(yolo) == data_before


def test_benchmark_run_folder_inside_the_data(yolo, weights_copy, capsys):
    before = tree_hash(yolo)
    argv = ["benchmark", "--weights", weights_copy, "--data", yolo / "data.yaml", "--formats", "pytorch"]
    refused(capsys, [*argv, "--project", yolo / "val" / "images"], "lies inside the input folder")
    assert tree_hash(yolo) == before


def test_dataset_inputs_name_yaml_splits_and_image_folders(yolo, coco):
    """What `dataset_inputs` hands to the rule, checked against the layout written above."""
    from lrnet.data.formats import dataset_inputs

    source = load_dataset_source(yolo / "data.yaml", "train", verbose=False)
    got = {p.resolve() for p in dataset_inputs(yolo / "data.yaml", [source])}
    want = {yolo / "data.yaml", yolo / "train" / "images", yolo / "val" / "images", yolo / "train" / "labels"}
    assert got == {p.resolve() for p in want}
    assert yolo.resolve() not in got  # the root: a valid place for new outputs
    assert {p.resolve() for p in dataset_inputs(yolo)} >= {(yolo / "data.yaml").resolve()}  # folder -> YAML
    coco_source = load_dataset_source(coco / "train.json", "train", verbose=False)
    assert {p.resolve() for p in dataset_inputs(coco / "train.json", [coco_source])} == {
        (coco / "train.json").resolve(),
        coco.resolve(),
    }
