"""A data format defined only in this file is usable everywhere lrnet takes data, without touching lrnet:
a data YAML with `format: mycsv`, the bare folder (its sniff rule), `DetectionDataset` and its
loader, `lrnet train --data`, and `lrnet data convert --from/--to mycsv`.

The toy format `mycsv`: a folder of images plus `labels.csv`, one row `image,x1,y1,x2,y2,class` per
object (pixels, class by name). It is registered only inside the `mycsv` fixture
(`registered_format`), so no other test sees it. docs/EXTENDING.md shows the same file.
"""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lrnet.cli import main
from lrnet.data import (
    DataFormat,
    DetectionDataset,
    build_dataloader,
    format_names,
    get_format,
    load_dataset_source,
    read_coco,
    register_format,
    registered_format,
    writable_format_names,
)
from lrnet.data.images import list_image_files
from lrnet.data.reading import ImageLabels, image_size_or_skip
from lrnet.data.source import DetectionSource, SkipCounter
from lrnet.errors import ConfigError, DataError

COLUMNS = ["image", "x1", "y1", "x2", "y2", "class"]
DUPLICATE_WARNING = r"labels.csv \(b.png\): dropped 1 box\(es\): duplicate"
pytestmark = pytest.mark.filterwarnings(r"ignore:.*labels.csv \(b.png\). dropped 1 box")


class CsvFormat(DataFormat):
    """A folder of images with `labels.csv`: `image,x1,y1,x2,y2,class` per object, in pixels."""

    name = "mycsv"
    description = "a folder of images with labels.csv"
    split_entry = "a folder of images with labels.csv"

    def sniff(self, path: Path) -> bool:
        return (path / "labels.csv").is_file()

    def read(self, path: Path, split: str) -> DetectionSource:
        rows: dict[str, list[dict]] = {}
        with open(path / "labels.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.setdefault(row["image"], []).append(row)
        names = sorted({r["class"] for image_rows in rows.values() for r in image_rows})
        counter, records = SkipCounter(), []
        for i, image in enumerate(list_image_files(path)):
            size = image_size_or_skip(image, counter)
            if size is None:
                continue
            labels = ImageLabels(*size, where=f"{path / 'labels.csv'} ({image.name})", counter=counter)
            for r in rows.get(image.name, []):
                xyxy = labels.clip([float(r[k]) for k in COLUMNS[1:5]])
                if xyxy is not None:
                    labels.add_box(xyxy, names.index(r["class"]))
            records.append(labels.record(image, image_id=i + 1))
        return DetectionSource(
            records, names, list(range(len(names))), root=str(path), images_verified=True, counter=counter
        )

    def write(self, source: DetectionSource, dst: Path, split: str) -> Path:
        import shutil

        dst.mkdir(parents=True, exist_ok=True)
        with open(dst / "labels.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(COLUMNS)
            for r in source.records:
                shutil.copyfile(r.im_file, dst / Path(r.im_file).name)
                for box, c in zip(r.boxes.tolist(), r.cls.tolist()):
                    out.writerow([Path(r.im_file).name, *box, source.names[c]])
        return dst / "labels.csv"


# image name -> (width, height, rows of x1, y1, x2, y2, class)
IMAGES = {
    "a.png": (80, 60, [(10, 5, 30, 25, "car"), (40, 40, 90, 70, "boat")]),  # the boat is clipped to 80x60
    "b.png": (64, 64, [(1, 2, 11, 12, "boat"), (1, 2, 11, 12, "boat")]),  # an exact duplicate
    "c.png": (50, 70, []),  # a background image
}
EXPECTED = {  # after clipping and de-duplication; names sorted: boat = 0, car = 1
    "a": ([[10, 5, 30, 25], [40, 40, 80, 60]], [1, 0]),
    "b": ([[1, 2, 11, 12]], [0]),
    "c": ([], []),
}


@pytest.fixture
def csv_folder(tmp_path) -> Path:
    folder = tmp_path / "csvset"
    folder.mkdir()
    rows = []
    for name, (w, h, objects) in IMAGES.items():
        cv2.imwrite(str(folder / name), np.full((h, w, 3), 90, np.uint8))
        rows += [[name, *obj] for obj in objects]
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([COLUMNS, *rows])
    return folder


@pytest.fixture
def mycsv():
    with registered_format(CsvFormat) as fmt:
        yield fmt


def _check_source(source: DetectionSource) -> None:
    assert source.names == ["boat", "car"] and source.category_ids == [0, 1]
    by_stem = {Path(r.im_file).stem: r for r in source.records}
    assert by_stem.keys() == EXPECTED.keys()
    for stem, (boxes, cls) in EXPECTED.items():
        np.testing.assert_allclose(by_stem[stem].boxes, np.array(boxes, np.float32).reshape(-1, 4))
        assert by_stem[stem].cls.tolist() == cls
    assert source.counter.dropped == {"duplicate": 1}


def test_registered_only_inside_the_context():
    assert "mycsv" not in format_names()
    with registered_format(CsvFormat) as fmt:
        assert format_names()[-1] == "mycsv" and get_format("MyCSV") is fmt
        assert "mycsv" in writable_format_names()
        with pytest.raises(ConfigError, match="already registered"):
            register_format(CsvFormat)
    assert "mycsv" not in format_names()
    with pytest.raises(ConfigError, match=r"unknown data format 'mycsv'.*coco, raster, visdrone, voc, yolo"):
        get_format("mycsv")


def test_data_yaml_with_format_key_trains(mycsv, csv_folder):
    data_yaml = csv_folder.parent / "data.yaml"
    data_yaml.write_text("path: .\nformat: mycsv\ntrain: csvset\nval: csvset\n")
    _check_source(load_dataset_source(data_yaml, "train", verbose=False))
    train = DetectionDataset(data_yaml, "train", imgsz=64, augment=True, seed=0, verbose=False)
    batch = next(iter(build_dataloader(train, batch_size=3, shuffle=True, seed=0)))
    assert batch["img"].shape == (3, 3, 64, 64) and batch["bboxes"].shape == (len(batch["cls"]), 4)
    val = DetectionDataset(data_yaml, "val", imgsz=64, augment=False, verbose=False)
    gt = val.coco_gt()
    assert [c["name"] for c in gt["categories"]] == ["boat", "car"] and len(gt["annotations"]) == 3


@pytest.mark.slow
def test_lrnet_train_takes_it_as_data(mycsv, csv_folder, tmp_path):
    data_yaml = csv_folder.parent / "data.yaml"
    data_yaml.write_text("path: .\nformat: mycsv\ntrain: csvset\nval: csvset\n")
    args = ["--model", "yolov8n", "--imgsz", "64", "--epochs", "1", "--batch", "2", "--workers", "0"]
    args += ["--device", "cpu", "--plots", "false", "--project", str(tmp_path / "runs"), "--name", "csv"]
    assert main(["train", "--data", str(data_yaml), *args]) == 0
    assert (tmp_path / "runs" / "csv" / "weights" / "last.pt").is_file()


def test_bare_folder_is_recognised_by_its_sniff_rule(mycsv, csv_folder):
    with pytest.warns(UserWarning, match=DUPLICATE_WARNING):
        _check_source(load_dataset_source(csv_folder, "train", verbose=False))
    ds = DetectionDataset(csv_folder, "val", imgsz=64, augment=False, verbose=False)
    sample = ds[0]  # a.png, 80x60 letterboxed to 64: scale 0.8
    np.testing.assert_allclose(sample["bboxes"][0].numpy(), [8, 4 + 8, 24, 20 + 8], atol=1e-4)


def test_bare_folder_unknown_without_the_format(csv_folder):
    with pytest.raises(DataError, match=r"csvset: cannot tell the data format"):
        load_dataset_source(csv_folder, "train", verbose=False)


def test_two_formats_claiming_a_folder_is_an_error(mycsv, csv_folder):
    class OtherCsv(CsvFormat):
        name = "othercsv"

    with (
        registered_format(OtherCsv),
        pytest.raises(DataError, match=r"several data formats.*mycsv, othercsv"),
    ):
        load_dataset_source(csv_folder, "train", verbose=False)


def test_yaml_entry_keys_are_checked(mycsv, csv_folder):
    data_yaml = csv_folder.parent / "bad.yaml"
    data_yaml.write_text("path: .\nformat: mycsv\ntrain: {images: csvset}\n")
    with pytest.raises(DataError, match=r"bad.yaml: 'train' has keys \['images'\].*mycsv"):
        load_dataset_source(data_yaml, "train", verbose=False)
    data_yaml.write_text("path: .\nformat: mycsv\ntrain: [csvset, csvset]\n")
    with pytest.raises(DataError, match=r"'train' is list, but a 'format: mycsv' split entry is a folder"):
        load_dataset_source(data_yaml, "train", verbose=False)


def test_cli_convert_from_and_to_the_new_format(mycsv, csv_folder, tmp_path, capsys):
    out_json = tmp_path / "out.json"
    assert main(["data", "convert", "--from", "mycsv", "--to", "coco", str(csv_folder), str(out_json)]) == 0
    coco = read_coco(out_json)
    _check_source_as_coco(coco)
    assert json.loads(out_json.read_text())["categories"][0]["name"] == "boat"
    back = tmp_path / "back"
    assert main(["data", "convert", "--from", "coco", "--to", "mycsv", str(out_json), str(back)]) == 0
    again = load_dataset_source(back, "train", verbose=False)
    for a, b in zip(coco.records, again.records):
        assert Path(a.im_file).name == Path(b.im_file).name
        np.testing.assert_allclose(a.boxes, b.boxes)
        assert a.cls.tolist() == b.cls.tolist()
    assert main(["data", "formats"]) == 0
    assert "mycsv (read, write): a folder of images with labels.csv" in capsys.readouterr().out


def _check_source_as_coco(coco: DetectionSource) -> None:
    assert coco.names == ["boat", "car"]
    by_stem = {Path(r.im_file).stem: r for r in coco.records}
    for stem, (boxes, cls) in EXPECTED.items():
        np.testing.assert_allclose(by_stem[stem].boxes, np.array(boxes, np.float32).reshape(-1, 4))
        assert by_stem[stem].cls.tolist() == cls
