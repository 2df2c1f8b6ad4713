"""docs/EXTENDING.md end to end: a block, a box loss and a data format defined only in this file
train together through `lrnet train` (`--model` YAML, `--box-loss` spec, `--data` folder), with no
edit to lrnet. Each is registered for this test only and gone afterwards.
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch import Tensor, nn

from lrnet.cli import main
from lrnet.data import DataFormat, format_names, registered_format
from lrnet.data.images import list_image_files
from lrnet.data.reading import ImageLabels, image_size_or_skip
from lrnet.data.source import DetectionSource, SkipCounter
from lrnet.losses import BoxGeometry, BoxLossOptions, iou, registered_box_loss, registered_box_losses
from lrnet.nn import LayerContext, registered_block, registered_blocks
from lrnet.weights.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


class TwinConv(nn.Module):
    """Two parallel 3x3 conv + BN branches summed: output channels equal the input's."""

    def __init__(self, c1: int) -> None:
        super().__init__()
        self.cv1, self.bn1 = nn.Conv2d(c1, c1, 3, 1, 1, bias=False), nn.BatchNorm2d(c1)
        self.cv2, self.bn2 = nn.Conv2d(c1, c1, 3, 1, 1, bias=False), nn.BatchNorm2d(c1)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.silu(self.bn1(self.cv1(x)) + self.bn2(self.cv2(x)))


def same_channels(args: list, ctx: LayerContext) -> tuple[list, int]:
    return [ctx.in_channels[0], *args], ctx.in_channels[0]


@dataclass(frozen=True)
class PowerIoUOptions(BoxLossOptions):
    power: float = 2.0


def power_iou_loss(geom: BoxGeometry, options: PowerIoUOptions) -> Tensor:
    """1 - IoU^power."""
    return 1.0 - iou(geom) ** options.power


class TsvFormat(DataFormat):
    """Images plus `boxes.tsv`: `image<TAB>x1<TAB>y1<TAB>x2<TAB>y2` per object, one class."""

    name = "mytsv"
    description = "a folder of images with boxes.tsv"
    split_entry = "a folder of images with boxes.tsv"

    def sniff(self, path: Path) -> bool:
        return (path / "boxes.tsv").is_file()

    def read(self, path: Path, split: str) -> DetectionSource:
        rows: dict[str, list[list[float]]] = {}
        with open(path / "boxes.tsv", newline="", encoding="utf-8") as f:
            for image, *xyxy in csv.reader(f, delimiter="\t"):
                rows.setdefault(image, []).append([float(v) for v in xyxy])
        counter, records = SkipCounter(), []
        for i, image in enumerate(list_image_files(path)):
            size = image_size_or_skip(image, counter)
            if size is None:
                continue
            labels = ImageLabels(*size, where=f"{path / 'boxes.tsv'} ({image.name})", counter=counter)
            for xyxy in rows.get(image.name, []):
                clipped = labels.clip(xyxy)
                if clipped is not None:
                    labels.add_box(clipped, 0)
            records.append(labels.record(image, image_id=i + 1))
        return DetectionSource(records, ["thing"], [0], root=str(path), images_verified=True, counter=counter)


MODEL_YAML = """\
nc: 1
box_loss: power-iou
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, TwinConv, []]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[2, 3], 1, Detect, [nc]]
"""


@contextlib.contextmanager
def extensions():
    with (
        registered_block(TwinConv, channels=same_channels, bn_pairs=(("cv1", "bn1"), ("cv2", "bn2"))),
        registered_box_loss("power-iou", power_iou_loss, options=PowerIoUOptions),
        registered_format(TsvFormat),
    ):
        yield


def _write_set(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        img = np.full((64, 64, 3), 40, np.uint8)
        x, y = (int(v) for v in rng.integers(4, 48, 2))
        img[y : y + 10, x : x + 10] = 220
        cv2.imwrite(str(folder / f"im{i}.png"), img)
        rows.append([f"im{i}.png", x, y, x + 10, y + 10])
    with open(folder / "boxes.tsv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows(rows)


def test_block_loss_and_format_from_this_file_train_through_the_cli(tmp_path):
    _write_set(tmp_path / "tsvset")
    model_yaml = tmp_path / "twin.yaml"
    model_yaml.write_text(MODEL_YAML)
    with extensions():
        code = main(
            ["train", "--model", str(model_yaml), "--data", str(tmp_path / "tsvset"),
             "--box-loss", "power-iou:power=3", "--epochs", "1", "--batch", "2", "--imgsz", "64",
             "--workers", "0", "--device", "cpu", "--project", str(tmp_path / "runs"), "--name", "ext",
             "--plots", "false"]
        )  # fmt: skip
        assert code == 0
        ckpt = load_checkpoint(tmp_path / "runs" / "ext" / "weights" / "last.pt")
        assert ckpt["train_args"]["box_loss"] == "power-iou:power=3"
        assert ckpt["model_cfg"]["box_loss"] == "power-iou"
        assert any(layer[2] == "TwinConv" for layer in ckpt["model_cfg"]["backbone"])
    assert "TwinConv" not in registered_blocks()
    assert "power-iou" not in registered_box_losses()
    assert "mytsv" not in format_names()
