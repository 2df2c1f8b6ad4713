import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from data_helpers import write_image

from lrnet.data import convert, load_dataset_source, read_coco, read_visdrone, read_voc
from lrnet.data.coco import write_coco
from lrnet.data.yolo import label_path_for

REAL_JSON = Path("/work/shared/data/visdrone2019-det-train-first50image.json")


def make_yolo(root: Path, labels: dict[str, str], names=("a", "b"), size=(100, 50)) -> Path:
    for stem, text in labels.items():
        write_image(root / "images" / "train" / f"{stem}.png", *size)
        lbl = root / "labels" / "train" / f"{stem}.txt"
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text(text)
    yaml_path = root / "data.yaml"
    yaml_path.write_text(f"path: .\ntrain: images/train\nval: images/train\nnames: {list(names)}\n")
    return yaml_path


def test_label_path_rule():
    assert label_path_for("/d/images/train/x.jpg") == Path("/d/labels/train/x.txt")
    assert label_path_for("/images/d/images/a/x.png") == Path("/images/d/labels/a/x.txt")


def test_yolo_reader_boxes_in_pixels(tmp_path):
    y = make_yolo(tmp_path, {"img1": "0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.1 0.2\n", "img2": ""})
    src = load_dataset_source(y, "train", verbose=False)
    assert src.names == ["a", "b"] and src.category_ids == [0, 1]
    r = {Path(r.im_file).stem: r for r in src.records}
    np.testing.assert_allclose(r["img1"].boxes, [[40, 15, 60, 35], [5, 5, 15, 15]], atol=1e-4)
    assert r["img1"].cls.tolist() == [0, 1]
    assert len(r["img2"].boxes) == 0  # empty label file: a background image


def test_yolo_bad_labels_are_dropped_or_skipped(tmp_path):
    labels = {
        "ok": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n",  # duplicate
        "cls": "7 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.1 0.1\n",  # unknown class
        "range": "0 1.5 0.5 0.2 0.2\n0 0.995 0.5 0.02 0.2\n",  # far out -> drop; slightly out -> clip
        "junk": "hello world\n",
    }
    y = make_yolo(tmp_path, labels)
    (tmp_path / "images" / "train" / "trunc.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = load_dataset_source(y, "train", verbose=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "junk.png" in messages and "trunc.png" in messages and "cls.txt" in messages
    r = {Path(r.im_file).stem: r for r in src.records}
    assert set(r) == {"ok", "cls", "range"}
    assert len(r["ok"].boxes) == 1
    assert r["cls"].cls.tolist() == [1]
    assert len(r["range"].boxes) == 1 and r["range"].boxes[0, 2] == pytest.approx(100.0)
    assert src.counter.skipped == {"bad labels": 1, "unreadable image": 1}
    assert src.counter.dropped["unknown class"] == 1 and src.counter.dropped["duplicate"] == 1
    assert "skipped 2 of 5 images" in src.counter.summary(5)


def test_missing_folder_names_yaml_and_path(tmp_path):
    y = tmp_path / "data.yaml"
    y.write_text("path: .\ntrain: images/nope\nnames: [a]\n")
    with pytest.raises(FileNotFoundError, match=r"data.yaml.*images/nope"):
        load_dataset_source(y, "train", verbose=False)


def test_label_cache_rebuilt_when_labels_change(tmp_path):
    y = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"})
    src = load_dataset_source(y, "train", verbose=False)
    cache = Path(src.cache_file)
    assert cache.is_file() and json.loads(cache.read_text())["version"] == 1
    assert len(load_dataset_source(y, "train", verbose=False).records[0].boxes) == 1
    lbl = tmp_path / "labels" / "train" / "a.txt"
    lbl.write_text("0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n")
    assert len(load_dataset_source(y, "train", verbose=False).records[0].boxes) == 2
    cache.write_text("{not json")  # a corrupt cache is rebuilt, never trusted
    assert len(load_dataset_source(y, "train", verbose=False).records[0].boxes) == 2


def test_coco_reader_iscrowd_as_ignore(tmp_path):
    data = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": 50, "height": 40}],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5], "iscrowd": 0, "area": 50},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [20, 20, 4, 4], "iscrowd": 0, "area": 16},
            {"id": 3, "image_id": 7, "category_id": 1, "bbox": [30, 0, 10, 10], "iscrowd": 1, "area": 100},
        ],
    }
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    src = read_coco(p)
    assert src.names == ["person", "car"] and src.category_ids == [1, 3]
    r = src.records[0]
    assert r.image_id == 7
    np.testing.assert_allclose(r.boxes, [[1, 2, 11, 7], [20, 20, 24, 24]])
    assert r.cls.tolist() == [1, 0]
    np.testing.assert_allclose(r.ignore, [[30, 0, 40, 10]])


def test_visdrone_reader_categories(tmp_path):
    write_image(tmp_path / "images" / "v1.jpg", 60, 40)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "v1.txt").write_text(
        "1,2,10,5,1,4,0,0\n"  # car
        "0,0,20,10,0,0,0,0\n"  # ignored region
        "30,30,5,5,1,11,0,0\n"  # others: not a target
        "40,10,30,5,1,1,0,1,\n"  # pedestrian, clipped at the border, trailing comma
    )
    src = read_visdrone(tmp_path)
    r = src.records[0]
    assert src.names[3] == "car" and src.category_ids == list(range(1, 11))
    np.testing.assert_allclose(r.boxes, [[1, 2, 11, 7], [40, 10, 60, 15]])
    assert r.cls.tolist() == [3, 0]
    np.testing.assert_allclose(r.ignore, [[0, 0, 20, 10]])


def test_voc_reader_difficult_as_ignore(tmp_path):
    (tmp_path / "Annotations").mkdir()
    write_image(tmp_path / "JPEGImages" / "0001.jpg", 80, 60)
    (tmp_path / "Annotations" / "0001.xml").write_text(
        "<annotation><filename>0001.jpg</filename><size><width>80</width><height>60</height></size>"
        "<object><name>dog</name><difficult>0</difficult><bndbox><xmin>11</xmin><ymin>6</ymin>"
        "<xmax>30</xmax><ymax>25</ymax></bndbox></object>"
        "<object><name>cat</name><difficult>1</difficult><bndbox><xmin>41</xmin><ymin>1</ymin>"
        "<xmax>50</xmax><ymax>10</ymax></bndbox></object></annotation>"
    )
    src = read_voc(tmp_path)
    assert len(src.names) == 20
    r = src.records[0]
    np.testing.assert_allclose(r.boxes, [[10, 5, 30, 25]])
    assert src.names[r.cls[0]] == "dog"
    np.testing.assert_allclose(r.ignore, [[40, 0, 50, 10]])


def test_real_visdrone_coco_json():
    src = read_coco(REAL_JSON)
    raw = json.loads(REAL_JSON.read_text())
    assert len(src) == 50 and src.num_boxes == 3326
    assert src.names == ["human", "vehicle"] and src.category_ids == [0, 1]
    ann = raw["annotations"][0]
    rec = next(r for r in src.records if r.image_id == ann["image_id"])
    x, y, w, h = ann["bbox"]
    assert [x, y, x + w, y + h] in rec.boxes.tolist()


def _boxes_by_image(src):
    return {Path(r.im_file).stem: (r.boxes, r.cls, r.ignore) for r in src.records}


def test_round_trip_visdrone_coco_yolo_coco(tmp_path):
    vis = tmp_path / "vis"
    rng = np.random.default_rng(0)
    (vis / "annotations").mkdir(parents=True)
    for k in range(3):
        write_image(vis / "images" / f"im{k}.jpg", 97, 61)
        lines = [
            f"{rng.uniform(0, 60):.2f},{rng.uniform(0, 40):.2f},{rng.uniform(1, 30):.2f},"
            f"{rng.uniform(1, 20):.2f},1,{rng.integers(1, 11)},0,0"
            for _ in range(6)
        ]
        lines.append("0,0,9,9,0,0,0,0")
        (vis / "annotations" / f"im{k}.txt").write_text("\n".join(lines))
    original = read_visdrone(vis)
    j1 = convert("visdrone", "coco", vis, tmp_path / "c1.json")
    y = convert("coco", "yolo", j1, tmp_path / "yolo")
    j2 = convert("yolo", "coco", y, tmp_path / "c2.json")
    final = read_coco(j2)
    assert final.names == original.names and final.category_ids == original.category_ids
    a, b = _boxes_by_image(original), _boxes_by_image(final)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k][0], a[k][0], atol=1e-3)
        assert b[k][1].tolist() == a[k][1].tolist()
        np.testing.assert_allclose(b[k][2], a[k][2], atol=1e-3)


def test_round_trip_real_json_through_yolo(tmp_path):
    src = read_coco(REAL_JSON)
    img_dir = tmp_path / "imgs"
    for r in src.records:  # the annotations come without images; YOLO needs them for the sizes
        write_image(img_dir / Path(r.im_file).name, r.width, r.height)
    shutil_json = tmp_path / "with_images.json"
    for r in src.records:
        r.im_file = str(img_dir / Path(r.im_file).name)
    write_coco(src, shutil_json)
    y = convert("coco", "yolo", shutil_json, tmp_path / "yolo")
    back = read_coco(convert("yolo", "coco", y, tmp_path / "back.json"))
    assert back.num_boxes == 3326 and back.names == src.names
    a, b = _boxes_by_image(src), _boxes_by_image(back)
    for k in a:
        np.testing.assert_allclose(b[k][0], a[k][0], atol=1e-3)
        assert b[k][1].tolist() == a[k][1].tolist()
