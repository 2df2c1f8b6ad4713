"""Train on part of a data set: `fraction` of the images, a subset of `classes`, or one class.

Applied to a `DetectionSource` in place, before any image is read. `classes` keeps the class
indices (and the model's class count) and drops the other boxes; images left without boxes stay as
background. `single_cls` maps every box to class 0, named "object".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lrnet.data.source import DetectionSource
from lrnet.errors import ConfigError


def select_records(
    source: DetectionSource,
    fraction: float = 1.0,
    classes: Sequence[int] = (),
    single_cls: bool = False,
) -> DetectionSource:
    """Restrict `source` (in place, returned too) to a fraction, a class subset and/or one class."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction={fraction!r} is out of range; use (0, 1]")
    if fraction < 1:
        source.records = source.records[: max(1, round(len(source.records) * fraction))]
    if classes:
        unknown = [c for c in classes if c >= len(source.names)]
        if unknown:
            raise ConfigError(
                f"classes {unknown} do not exist in {source.root or 'the data set'}, which has "
                f"{len(source.names)} classes (0..{len(source.names) - 1}); pick indices from that range"
            )
        wanted = np.asarray(sorted(classes), dtype=np.int64)
        for r in source.records:
            keep = np.isin(r.cls, wanted)
            r.boxes, r.cls = r.boxes[keep], r.cls[keep]
    if single_cls:
        for r in source.records:
            r.cls = np.zeros_like(r.cls)
        source.names, source.category_ids = ["object"], [1]
    return source
