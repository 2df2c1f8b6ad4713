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
    """Constants (pixels) of the assigner's metric, the box loss's measures left to the data (nwd with c=0,
    dotd with s=0: {measure: constant}) and NWD NMS; None: unused."""

    assign: float | None = None
    box_loss: dict[str, float] | None = None
    nms: float | None = None


def training_box_sizes(records: Any, imgsz: int, window: int = 0) -> torch.Tensor:
    """(N, 2) widths and heights of every training box in pixels of the network input (long side imgsz).

    With `window` > 0 the network sees windows of that side (`TrainConfig.windows`), or the whole
    image when it is smaller, resized to imgsz: the ratio is imgsz / min(window, long side).
    """
    sizes = []
    for r in records:
        if len(r.boxes):
            side = max(r.width, r.height)
            ratio = imgsz / (min(window, side) if window > 0 else side)
            boxes = np.asarray(r.boxes, dtype=np.float64)
            sizes.append((boxes[:, 2:4] - boxes[:, 0:2]) * ratio)
    return torch.from_numpy(np.concatenate(sizes)) if sizes else torch.zeros((0, 2), dtype=torch.float64)


def resolve_similarity_scales(
    assign_metric: str,
    nms_metric: str,
    box: BoxLossConfig,
    given: float,
    records: Any,
    imgsz: int,
    verbose: bool = True,
    window: int = 0,
) -> SimilarityScales:
    """The constants this run needs: `given` (> 0) for all, else each measure's value on the training set
    (`window`: the side of the training windows, 0 for whole images; see `training_box_sizes`)."""
    wanted = [  # (use, measure)
        *([("assign", assign_metric)] if similarity_measure(assign_metric).needs_scale else []),
        *(("box_loss", m) for m in box.params.data_scale_measures()),
        *([("nms", "nwd")] if nms_metric == "nwd" else []),
    ]
    if not wanted:
        return SimilarityScales()
    if given > 0:
        values = [float(given)] * len(wanted)
        origin = "similarity_scale"
    else:
        sizes = training_box_sizes(records, imgsz, window)
        values = [similarity_scale(m, sizes) for _, m in wanted]
        origin = f"{sizes.shape[0]} training boxes at imgsz {imgsz}"
    if verbose:
        shown = ", ".join(f"{use} ({m}) {v:.2f} px" for (use, m), v in zip(wanted, values))
        print(f"similarity constants from {origin}: {shown}")
    found = list(zip(wanted, values))
    box_loss = {m: v for (use, m), v in found if use == "box_loss"}
    single = {use: v for (use, _), v in found if use != "box_loss"}
    return SimilarityScales(single.get("assign"), box_loss or None, single.get("nms"))
