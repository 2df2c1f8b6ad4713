"""Detection data: format readers/writers, augmentation, dataset, loader, synthetic set, statistics."""

from lrnet.data.augment import AugmentConfig, letterbox
from lrnet.data.coco import read_coco, source_to_coco, write_coco
from lrnet.data.convert import convert
from lrnet.data.dataset import DetectionDataset, build_dataset
from lrnet.data.formats import load_dataset_source
from lrnet.data.loader import build_dataloader, collate_fn
from lrnet.data.source import DetectionRecord, DetectionSource
from lrnet.data.stats import dataset_stats
from lrnet.data.synthetic import generate_synthetic
from lrnet.data.visdrone import read_visdrone
from lrnet.data.voc import read_voc
from lrnet.data.yolo import write_yolo_split

__all__ = [
    "AugmentConfig",
    "DetectionDataset",
    "DetectionRecord",
    "DetectionSource",
    "build_dataloader",
    "build_dataset",
    "collate_fn",
    "convert",
    "dataset_stats",
    "generate_synthetic",
    "letterbox",
    "load_dataset_source",
    "read_coco",
    "read_visdrone",
    "read_voc",
    "source_to_coco",
    "write_coco",
    "write_yolo_split",
]
