"""IoU-family box-regression losses, one registered kind per function (docs/box_losses.md).

`registry.py` holds the registry and `config.py` the options resolver and the spec syntax; the
built-in kinds register themselves when their modules are imported below. A new kind needs only
its own file (docs/EXTENDING.md, "A new box loss").
"""

# isort: off
# The built-in kinds register on import, in this order: the order of every list derived from the registry.
from lrnet.losses.box import iou_family  # noqa: F401
from lrnet.losses.box import eiou  # noqa: F401
from lrnet.losses.box import siou  # noqa: F401
from lrnet.losses.box import rsiou  # noqa: F401
from lrnet.losses.box import wiou  # noqa: F401
from lrnet.losses.box import nwd  # noqa: F401
from lrnet.losses.box import dotd  # noqa: F401
from lrnet.losses.box import mixture  # noqa: F401

# isort: on
from lrnet.losses.box.config import BoxLossConfig, parse_box_loss_spec, resolve_box_loss
from lrnet.losses.box.focal import FOCAL_MODES
from lrnet.losses.box.module import BoxLoss, box_iou_value, box_loss
from lrnet.losses.box.registry import (
    BoxLossKind,
    BoxLossOptionError,
    BoxLossOptions,
    BoxLossState,
    box_loss_kind,
    lookup_box_loss,
    register_box_loss,
    register_box_loss_variant,
    registered_box_loss,
    registered_box_losses,
    unregister_box_loss,
)

__all__ = [
    "FOCAL_MODES",
    "BoxLoss",
    "BoxLossConfig",
    "BoxLossKind",
    "BoxLossOptionError",
    "BoxLossOptions",
    "BoxLossState",
    "box_iou_value",
    "box_loss",
    "box_loss_kind",
    "lookup_box_loss",
    "parse_box_loss_spec",
    "register_box_loss",
    "register_box_loss_variant",
    "registered_box_loss",
    "registered_box_losses",
    "resolve_box_loss",
    "unregister_box_loss",
]
