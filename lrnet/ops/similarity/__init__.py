"""Box similarity measures (IoU, CIoU, NWD, DotD) for the assigner, the box loss and NMS.

One file per measure; each registers itself (`registry.py`). docs/SIMILARITY.md has the formulas.
"""

# isort: off
from lrnet.ops.similarity import iou  # noqa: F401
from lrnet.ops.similarity import ciou  # noqa: F401
from lrnet.ops.similarity import nwd  # noqa: F401
from lrnet.ops.similarity import dotd  # noqa: F401

# isort: on
from lrnet.ops.similarity.registry import (
    DEFAULT_SCALE,
    SimilarityMeasure,
    check_scale,
    pairwise_similarity,
    register_similarity,
    registered_similarities,
    registered_similarity,
    similarity,
    similarity_measure,
    similarity_scale,
)

__all__ = [
    "DEFAULT_SCALE",
    "SimilarityMeasure",
    "check_scale",
    "pairwise_similarity",
    "register_similarity",
    "registered_similarities",
    "registered_similarity",
    "similarity",
    "similarity_measure",
    "similarity_scale",
]
