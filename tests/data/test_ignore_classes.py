"""`ignore_classes` in a data YAML: boxes of named classes become ignore regions (HIT-UAV's DontCare)."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from data_helpers import write_image

from lrnet.data import load_dataset_source
from lrnet.errors import DataError
from tests.fixtures.voc import voc_objects

HIT_UAV = Path(__file__).resolve().parents[1] / "assets" / "hit_uav"
HIT_NAMES = ["Person", "Car", "Bicycle", "OtherVehicle", "DontCare"]


def _write_yaml(yaml_file: Path, **cfg) -> Path:
    yaml_file.write_text(yaml.safe_dump(cfg))
    return yaml_file


def test_real_hit_uav_dontcare_becomes_ignore_regions(tmp_path):
    data = _write_yaml(
        tmp_path / "hit.yaml",
        path=str(HIT_UAV),
        format="voc",
        train=".",
        names=HIT_NAMES,
        ignore_classes=["DontCare"],
    )
    src = load_dataset_source(data, "train", verbose=False)
    assert src.names == ["Person", "Car", "Bicycle", "OtherVehicle"]
    assert src.category_ids == [0, 1, 2, 3]
    assert len(src) == 2
    n_dontcare = 0
    for record in src.records:
        objects = voc_objects(HIT_UAV / "Annotations" / f"{Path(record.im_file).stem}.xml")
        want_ignore = sorted(b for n, b in objects if n == "DontCare")
        want_boxes = sorted((b, HIT_NAMES.index(n)) for n, b in objects if n != "DontCare")
        n_dontcare += len(want_ignore)
        assert sorted(record.ignore.tolist()) == want_ignore
        got = sorted(zip(record.boxes.tolist(), record.cls.tolist()))
        assert got == want_boxes  # DontCare is the last class: the others keep their indices
    assert n_dontcare == 4


def test_real_hit_uav_without_the_key_keeps_dontcare_as_a_class(tmp_path):
    data = _write_yaml(tmp_path / "hit.yaml", path=str(HIT_UAV), format="voc", train=".", names=HIT_NAMES)
    src = load_dataset_source(data, "train", verbose=False)
    assert src.names == HIT_NAMES
    assert sum((r.cls == 4).sum() for r in src.records) == 4
    assert all(len(r.ignore) == 0 for r in src.records)


def _yolo_set(tmp_path: Path) -> Path:
    write_image(tmp_path / "images" / "a.png", 100, 50)
    (tmp_path / "labels").mkdir()
    # classes 0 (car), 1 (dontcare), 2 (person): normalised cx cy w h
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.25 0.5 0.1 0.4\n2 0.8 0.2 0.1 0.2\n")
    return tmp_path


def test_middle_class_is_removed_and_later_classes_move_down(tmp_path):
    root = _yolo_set(tmp_path)
    data = _write_yaml(
        root / "d.yaml",
        path=".",
        train="images",
        names=["car", "dontcare", "person"],
        ignore_classes=["dontcare"],
    )
    src = load_dataset_source(data, "train", verbose=False)
    (record,) = src.records
    assert src.names == ["car", "person"]
    assert record.cls.tolist() == [0, 1]
    np.testing.assert_allclose(record.boxes, [[40, 20, 60, 30], [75, 5, 85, 15]], atol=1e-4)
    np.testing.assert_allclose(record.ignore, [[20, 15, 30, 35]], atol=1e-4)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["cat"], r"names \['cat'\], which are not classes"),
        (5, "must be a list of class names"),
        ([["car"]], "must be a list of class names"),
        (["car", "dontcare", "person"], "lists every class"),
    ],
)
def test_bad_ignore_classes_name_the_yaml(tmp_path, value, message):
    root = _yolo_set(tmp_path)
    data = _write_yaml(
        root / "d.yaml", path=".", train="images", names=["car", "dontcare", "person"], ignore_classes=value
    )
    with pytest.raises(DataError, match=message) as info:
        load_dataset_source(data, "train", verbose=False)
    assert str(data) in str(info.value)
