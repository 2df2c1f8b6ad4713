"""Detection data: format registry, readers/writers, augmentation, dataset, loader, synthetic set, statistics.

Importing the package registers the built-in data formats (coco, raster, visdrone, voc, yolo; see
`lrnet.data.registry` and docs/EXTENDING.md for adding one).
"""

from lrnet.data.augment import AugmentConfig, letterbox
from lrnet.data.coco import read_coco, source_to_coco, write_coco
from lrnet.data.convert import convert
from lrnet.data.dataset import DetectionDataset
from lrnet.data.formats import load_dataset_source
from lrnet.data.images import IMAGE_SUFFIXES
from lrnet.data.loader import build_dataloader, collate_fn
from lrnet.data.registry import (
    DataFormat,
    format_names,
    get_format,
    register_format,
    registered_format,
    unregister_format,
    writable_format_names,
)
from lrnet.data.source import DetectionRecord, DetectionSource
from lrnet.data.stats import dataset_stats
from lrnet.data.synthetic import generate_synthetic
from lrnet.data.visdrone import read_visdrone
from lrnet.data.voc import read_voc
from lrnet.data.yolo import write_yolo_split

__all__ = [
    "IMAGE_SUFFIXES",
    "AugmentConfig",
    "DataFormat",
    "DetectionDataset",
    "DetectionRecord",
    "DetectionSource",
    "build_dataloader",
    "collate_fn",
    "convert",
    "dataset_stats",
    "format_names",
    "generate_synthetic",
    "get_format",
    "letterbox",
    "load_dataset_source",
    "read_coco",
    "read_visdrone",
    "read_voc",
    "register_format",
    "registered_format",
    "source_to_coco",
    "unregister_format",
    "writable_format_names",
    "write_coco",
    "write_yolo_split",
]
