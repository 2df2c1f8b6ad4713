"""Detection metrics: COCO-style AP under the AI-TOD and COCO protocols."""

from lrnet.eval.coco_format import detections_to_coco
from lrnet.eval.coco_metrics import PROTOCOLS, coco_metrics

__all__ = ["PROTOCOLS", "coco_metrics", "detections_to_coco"]
