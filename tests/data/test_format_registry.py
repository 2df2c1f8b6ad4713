"""The built-in data formats through the registry: lookup, sniffing, data YAML keys, errors."""

import json

import cv2
import numpy as np
import pytest
from data_helpers import write_image

from lrnet.data import IMAGE_SUFFIXES, convert, format_names, get_format, load_dataset_source, read_coco
from lrnet.data.convert import read_split
from lrnet.data.images import list_image_files
from lrnet.data.yolo import list_images
from lrnet.errors import ConfigError, DataError, InputFileNotFoundError

BUILTIN = ["coco", "visdrone", "voc", "yolo"]


def test_builtins_are_registered_with_their_writers():
    assert set(BUILTIN) <= set(format_names())
    assert [n for n in BUILTIN if get_format(n).can_write] == ["coco", "yolo"]


@pytest.mark.parametrize("name", format_names())
def test_every_format_describes_itself_and_refuses_a_missing_path(name, tmp_path):
    fmt = get_format(name)
    assert fmt.name == name and fmt.description and fmt.split_entry
    with pytest.raises(InputFileNotFoundError, match=f"missing.*'{name}' input"):
        read_split(name, tmp_path / "missing")


def test_unknown_or_unwritable_format_is_a_config_error(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown data format 'nope'; registered formats: coco, raster, visdrone"
    ):
        convert("nope", "coco", tmp_path, tmp_path / "x.json")
    with pytest.raises(ConfigError, match=r"'voc' has no writer; formats that can be written: coco, yolo"):
        convert("coco", "voc", tmp_path, tmp_path / "x")


def _yaml(tmp_path, text):
    (tmp_path / "images").mkdir(exist_ok=True)
    p = tmp_path / "d.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("path: .\nval: images\nnames: [a]\nformat: nope\n", r"'format: nope' is not a registered.*coco"),
        ("path: .\ntrain: images\nnames: [a]\n", r"d.yaml: no 'val' split \(splits present: \['train'\]\)"),
        ("path: .\nval: images\n", r"'format: yolo' needs 'names'"),
        ("path: .\nval: images\nnames: {0: a, 2: b}\n", r"'names' keys must be 0..1, got \[0, 2\]"),
        (
            "path: .\nval: {annotation: a.json}\nformat: coco\n",
            r"'val' has keys \['annotation'\].*images, annotations",
        ),
        ("path: .\nval: [unclosed\n", r"d.yaml: not valid YAML"),
        ("- a\n- b\n", r"d.yaml: a data YAML must be a mapping"),
    ],
)
def test_bad_data_yaml_is_a_data_error(tmp_path, text, pattern):
    with pytest.raises(DataError, match=pattern):
        load_dataset_source(_yaml(tmp_path, text), "val", verbose=False)


def test_yaml_entries_that_do_not_exist_name_the_yaml(tmp_path):
    y = _yaml(tmp_path, "path: .\nval: {annotations: none.json}\nformat: coco\n")
    with pytest.raises(InputFileNotFoundError, match=r"d.yaml: val annotations .*none.json does not exist"):
        load_dataset_source(y, "val", verbose=False)
    y = _yaml(tmp_path, "path: nowhere\nval: x\nnames: [a]\n")
    with pytest.raises(InputFileNotFoundError, match=r"root folder 'path: nowhere'"):
        load_dataset_source(y, "val", verbose=False)


def test_coco_json_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"bad.json: not valid JSON"):
        read_coco(bad)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DataError, match=r"partial.json: missing the 'categories' list"):
        read_coco(partial)
    no_bbox = tmp_path / "nobbox.json"
    no_bbox.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "x.jpg", "width": 9, "height": 9}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1}],
                "categories": [{"id": 1, "name": "a"}],
            }
        )
    )
    with pytest.warns(UserWarning, match=r"nobbox.json \(annotation 1\): dropped 1 box\(es\): bad bbox"):
        src = read_coco(no_bbox)  # one corrupt annotation is dropped and counted, not the whole file
    assert src.num_boxes == 0 and src.counter.dropped == {"bad bbox": 1}


def _visdrone(root):
    write_image(root / "images" / "v.jpg", 40, 30)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "v.txt").write_text("1,2,10,5,1,4,0,0\n")
    return root


def test_folders_are_sniffed_and_ambiguity_refused(tmp_path):
    vis = _visdrone(tmp_path / "vis")
    src = load_dataset_source(vis, "train", verbose=False)
    assert src.names[3] == "car" and src.records[0].cls.tolist() == [3]
    (vis / "Annotations").mkdir()  # now VOC claims it too
    with pytest.raises(DataError, match=r"several data formats \(visdrone, voc\).*'format: <name>'"):
        load_dataset_source(vis, "train", verbose=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: cannot tell the data format.*coco: a COCO JSON file"):
        load_dataset_source(tmp_path / "empty", "train", verbose=False)
    with pytest.raises(InputFileNotFoundError, match=r"data .*nothing does not exist"):
        load_dataset_source(tmp_path / "nothing", "train", verbose=False)


def test_one_image_suffix_list_for_every_reader(tmp_path):
    img = np.full((8, 8, 3), 90, np.uint8)
    folder = tmp_path / "images"
    folder.mkdir()
    for k, suffix in enumerate(IMAGE_SUFFIXES):
        assert cv2.imwrite(str(folder / f"i{k}{suffix}"), img)
    (folder / f"upper{IMAGE_SUFFIXES[0].upper()}").write_bytes(
        (folder / f"i0{IMAGE_SUFFIXES[0]}").read_bytes()
    )
    (folder / "notes.txt").write_text("not an image")
    expected = len(IMAGE_SUFFIXES) + 1
    assert len(list_image_files(folder)) == expected
    assert len(list_images("images", tmp_path, "test")) == expected
    (tmp_path / "annotations").mkdir()
    assert len(load_dataset_source(tmp_path, "train", verbose=False)) == expected  # VisDrone reader
