"""experiments/hituav/prepare.py on a fake HIT-UAV mirror: a bare git repository made here from the two
real frames of tests/assets/hit_uav (copied under five names), read back independently of lrnet."""

import json
import random
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from experiments.hituav import prepare
from experiments.hituav import protocol as P
from lrnet.data import load_dataset_source
from lrnet.errors import DataError, InputFileNotFoundError
from tests.fixtures.voc import voc_objects

ASSET = Path(__file__).resolve().parents[1] / "assets" / "hit_uav"
FRAMES = sorted(p.stem for p in (ASSET / "Annotations").glob("*.xml"))
LISTS = {"train": ["t0", "t1", "t2"], "val": ["v0"], "test": ["s0"]}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _fake_mirror(tmp: Path) -> Path:
    """A bare repository holding normal_xml/ with five images (copies of the two real frames)."""
    work = tmp / "work"
    voc = work / P.VOC_FOLDER
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    names = [n for ids in LISTS.values() for n in ids]
    for k, name in enumerate(names):
        frame = FRAMES[k % 2]
        root = ET.parse(ASSET / "Annotations" / f"{frame}.xml").getroot()
        root.find("filename").text = f"{name}.jpg"
        ET.ElementTree(root).write(voc / "Annotations" / f"{name}.xml")
        shutil.copyfile(ASSET / "JPEGImages" / f"{frame}.jpg", voc / "JPEGImages" / f"{name}.jpg")
    for split, ids in LISTS.items():
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    (work / "README.md").write_text("fake\n")
    _git("init", "-q", cwd=work)
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fake", cwd=work)
    bare = tmp / "mirror.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp)
    shutil.rmtree(work)
    return bare


def _opts(source: Path, data: Path, **kw) -> prepare.PrepareOptions:
    base = {"commit": "HEAD", "subset": 2, "smoke": 1, "check_counts": False, "tiles": False}
    return prepare.PrepareOptions(source=str(source), data=str(data), **{**base, **kw})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hituav")
    mirror = _fake_mirror(tmp)
    data = tmp / "data"
    summary = prepare.prepare(_opts(mirror, data, tiles=True))
    return mirror, P.Layout(data.resolve()), summary


def test_lists_are_the_protocols_draw(prepared):
    _, layout, _ = prepared
    want = random.Random(0).sample(sorted(LISTS["train"]), 2)
    assert (layout.voc / "ImageSets/Main/train2.txt").read_text().split() == want
    assert (layout.voc / "ImageSets/Main/smoke1.txt").read_text().split() == want[:1]
    assert (layout.voc / "ImageSets/Main/smoke_val1.txt").read_text().split() == LISTS["val"][:1]
    assert (layout.voc / "ImageSets/Main/smoke_test1.txt").read_text().split() == LISTS["test"][:1]
    assert prepare.draw_subset(["b", "a", "c"], 2, 0) == random.Random(0).sample(["a", "b", "c"], 2)
    with pytest.raises(Exception, match="subset of 4 images"):
        prepare.draw_subset(["a", "b", "c"], 4, 0)


def test_data_yamls_read_the_subset_and_keep_test_apart(prepared):
    _, layout, _ = prepared
    train = load_dataset_source(layout.data_yaml, "train", verbose=False)
    assert sorted(Path(r.im_file).stem for r in train.records) == sorted(
        random.Random(0).sample(sorted(LISTS["train"]), 2)
    )
    assert train.names == list(P.CLASSES)
    assert [
        Path(r.im_file).stem for r in load_dataset_source(layout.data_yaml, "val", verbose=False).records
    ] == ["v0"]
    assert "test" not in yaml.safe_load(layout.data_yaml.read_text())
    assert set(yaml.safe_load(layout.test_yaml.read_text())) >= {"test", "ignore_classes", "names"}
    assert "val" not in yaml.safe_load(layout.test_yaml.read_text())


@pytest.mark.parametrize("split", ["val", "test"])
def test_ground_truth_has_dontcare_as_iscrowd(prepared, split):
    _, layout, _ = prepared
    gt = json.loads(layout.gt(split).read_text())
    (image,) = gt["images"]
    stem = LISTS[split][0]
    assert image["file_name"] == f"{P.VOC_FOLDER}/JPEGImages/{stem}.jpg"
    assert (layout.root / image["file_name"]).is_file()
    assert [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])] == list(P.CLASSES)
    objects = voc_objects(layout.voc / "Annotations" / f"{stem}.xml")
    want_crowd = sorted(b for n, b in objects if n == "DontCare")
    want_boxes = sorted((P.CLASSES.index(n), b) for n, b in objects if n != "DontCare")
    assert want_crowd  # the real frames have DontCare boxes

    def xyxy(a):
        x, y, w, h = a["bbox"]
        return [round(v, 3) for v in (x, y, x + w, y + h)]

    crowd = [a for a in gt["annotations"] if a["iscrowd"] == 1]
    boxes = sorted((a["category_id"], xyxy(a)) for a in gt["annotations"] if a["iscrowd"] == 0)
    # one copy of each ignore region per category (pycocotools matches crowds within a category)
    assert len(crowd) == len(want_crowd) * len(P.CLASSES)
    assert sorted({tuple(xyxy(a)) for a in crowd}) == [tuple(b) for b in want_crowd]
    assert boxes == [(c, [round(v, 3) for v in b]) for c, b in want_boxes]


def test_yolo_view_drops_and_greys_dontcare(prepared):
    _, layout, _ = prepared
    y = layout.yolo
    entries = (y / "train2.txt").read_text().split()
    assert [Path(e).stem for e in entries] == random.Random(0).sample(sorted(LISTS["train"]), 2)
    for entry in entries:
        stem = Path(entry).stem
        objects = voc_objects(layout.voc / "Annotations" / f"{stem}.xml")
        labels = (y / "labels" / "train" / f"{stem}.txt").read_text().splitlines()
        assert sorted(int(line.split()[0]) for line in labels) == sorted(
            P.CLASSES.index(n) for n, _ in objects if n != "DontCare"
        )
        assert entry.endswith(".png")  # both real frames hold DontCare boxes: greyed, lossless
        img = cv2.imread(str(y / entry))
        original = cv2.imread(str(layout.voc / "JPEGImages" / f"{stem}.jpg"))
        grey = np.zeros(img.shape[:2], bool)
        for name, (x1, y1, x2, y2) in objects:
            if name == "DontCare":
                grey[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
        assert (img[grey] == 114).all()
        assert (img[~grey] == original[~grey]).all()
    assert (y / "val.txt").read_text().split() == ["./images/val/v0.jpg"]
    cfg = yaml.safe_load(layout.yolo_yaml.read_text())
    assert cfg == {"train": "train2.txt", "val": "val.txt", "names": dict(enumerate(P.CLASSES))}
    assert yaml.safe_load(layout.yolo_smoke_yaml.read_text())["val"] == "smoke_val1.txt"


def test_tiles_of_the_subset(prepared):
    _, layout, summary = prepared
    tiled = load_dataset_source(layout.tiles_yaml, "train", verbose=False)
    assert summary["tiles_yaml"] == str(layout.tiles_yaml)
    assert {Path(r.im_file).name.split("_")[0] for r in tiled.records} <= set(LISTS["train"])
    assert all(r.width == 320 and r.height == 320 for r in tiled.records)


def test_rerun_changes_nothing_and_leaves_no_temporary_folders(prepared):
    mirror, layout, _ = prepared
    stamps = [
        layout.voc / prepare.SOURCE_STAMP,
        layout.yolo / prepare.VIEW_STAMP,
        layout.tiles / prepare.VIEW_STAMP,
    ]
    before = [p.stat().st_mtime_ns for p in stamps]
    gt_before = layout.gt("val").read_bytes()
    prepare.prepare(_opts(mirror, layout.root, tiles=True))
    assert [p.stat().st_mtime_ns for p in stamps] == before
    assert layout.gt("val").read_bytes() == gt_before
    assert not [p.name for p in layout.root.iterdir() if p.name.startswith(".")]


def test_missing_source_and_wrong_release_are_clear_errors(tmp_path, prepared):
    mirror, _, _ = prepared
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        prepare.prepare(_opts(tmp_path / "nowhere", tmp_path / "d1"))
    with pytest.raises(DataError, match="not the HIT-UAV release"):
        prepare.prepare(_opts(mirror, tmp_path / "d2", check_counts=True))
    with pytest.raises(DataError, match="no commit"):
        prepare.prepare(_opts(mirror, tmp_path / "d3", commit="0" * 40))
    assert not (tmp_path / "d2" / P.VOC_FOLDER).exists()  # nothing half-extracted is left
    (tmp_path / "d4" / P.VOC_FOLDER).mkdir(parents=True)  # someone else's folder is never replaced
    with pytest.raises(DataError, match=r"not written by prepare\.py"):
        prepare.prepare(_opts(mirror, tmp_path / "d4"))


def test_a_folder_source_is_copied(tmp_path, prepared):
    _, layout, _ = prepared
    summary = prepare.prepare(_opts(layout.voc, tmp_path / "copy", yolo=False))
    assert summary["source"]["origin"] == {"folder": str(layout.voc.resolve())}
    assert json.loads(P.Layout(tmp_path / "copy").gt("val").read_text()) == json.loads(
        layout.gt("val").read_text()
    )
