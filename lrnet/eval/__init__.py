"""Detection metrics: COCO-style AP under the AI-TOD and COCO protocols.

Modules: `coco_metrics` (the protocols, `coco_metrics` and `evaluate_coco` (metrics with the arrays
behind them), `METRIC_NAMES`, `default_max_det` and
`EvalJsonJob`, the options of `lrnet eval-json`), `coco_format` (detections -> COCO results),
`pr_curve` (precision-recall curves and their plot) and `metrics_table` (the text table of
`lrnet eval-json`).
"""

from lrnet.eval.coco_format import detections_to_coco
from lrnet.eval.coco_metrics import (
    METRIC_NAMES,
    PROTOCOLS,
    EvalJsonJob,
    Evaluation,
    coco_metrics,
    default_max_det,
    evaluate_coco,
)
from lrnet.eval.metrics_table import format_metrics_table

__all__ = [
    "METRIC_NAMES",
    "PROTOCOLS",
    "EvalJsonJob",
    "Evaluation",
    "coco_metrics",
    "default_max_det",
    "detections_to_coco",
    "evaluate_coco",
    "format_metrics_table",
]
