"""The length constants of the Gaussian similarities for one training run, from its training labels.

NWD and DotD need a length (docs/SIMILARITY.md): `TrainConfig.similarity_scale` when given, else
derived from the training boxes at the training scale (each image's long side resized to `imgsz`):
NWD's C is their mean sqrt(w h), DotD's S the root of their mean area. Printed once per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lrnet.losses.box import BoxLossConfig
from lrnet.ops.similarity import similarity_measure, similarity_scale


@dataclass(frozen=True)
class SimilarityScales:
    """Constants (pixels) of the assigner's metric, an nwd box loss with c=0 and NWD NMS; None: unused."""

    assign: float | None = None
    box_loss: float | None = None
    nms: float | None = None


def training_box_sizes(records: Any, imgsz: int) -> torch.Tensor:
    """(N, 2) widths and heights of every training box in pixels of the network input (long side imgsz)."""
    sizes = []
    for r in records:
        if len(r.boxes):
            ratio = imgsz / max(r.width, r.height)
            boxes = np.asarray(r.boxes, dtype=np.float64)
            sizes.append((boxes[:, 2:4] - boxes[:, 0:2]) * ratio)
    return torch.from_numpy(np.concatenate(sizes)) if sizes else torch.zeros((0, 2), dtype=torch.float64)


def _loss_needs_scale(box: BoxLossConfig) -> bool:
    return box.params.with_data_scale(1.0) != box.params


def resolve_similarity_scales(
    assign_metric: str,
    nms_metric: str,
    box: BoxLossConfig,
    given: float,
    records: Any,
    imgsz: int,
    verbose: bool = True,
) -> SimilarityScales:
    """The constants this run needs: `given` (> 0) for all, else each measure's value on the training set."""
    wanted = {
        "assign": assign_metric if similarity_measure(assign_metric).needs_scale else None,
        "box_loss": "nwd" if _loss_needs_scale(box) else None,
        "nms": "nwd" if nms_metric == "nwd" else None,
    }
    if not any(wanted.values()):
        return SimilarityScales()
    if given > 0:
        values = {k: float(given) if m else None for k, m in wanted.items()}
        origin = "similarity_scale"
    else:
        sizes = training_box_sizes(records, imgsz)
        values = {k: similarity_scale(m, sizes) if m else None for k, m in wanted.items()}
        origin = f"{sizes.shape[0]} training boxes at imgsz {imgsz}"
    if verbose:
        shown = ", ".join(f"{k} ({wanted[k]}) {v:.2f} px" for k, v in values.items() if v is not None)
        print(f"similarity constants from {origin}: {shown}")
    return SimilarityScales(**values)
