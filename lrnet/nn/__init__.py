"""LR-Net / YOLOv8 networks: blocks, the detection head, configs and the model builder.

Importing a block's module registers its blocks (`lrnet.nn.registry.register_block`), so every
module defining a shipped block is imported here; see docs/EXTENDING.md ("A new block").
"""

from lrnet.nn.blocks import SPPF, Bottleneck, C2f, Concat, Upsample
from lrnet.nn.channels import CHANNEL_RULES, LayerContext
from lrnet.nn.config import LayerSpec, load_model_config, make_divisible, shipped_model_names
from lrnet.nn.conv import Conv
from lrnet.nn.dfl import DFL, dfl_decode
from lrnet.nn.fuse import fuse_conv_and_bn, fuse_model
from lrnet.nn.head import Detect
from lrnet.nn.lff import LFF
from lrnet.nn.model import DetectionModel, build_model
from lrnet.nn.registry import (
    get_block,
    register_block,
    registered_block,
    registered_blocks,
    unregister_block,
)
from lrnet.nn.simam import SimAM
from lrnet.nn.space_to_depth import SpaceToDepth

__all__ = [
    "CHANNEL_RULES",
    "DFL",
    "LFF",
    "SPPF",
    "Bottleneck",
    "C2f",
    "Concat",
    "Conv",
    "Detect",
    "DetectionModel",
    "LayerContext",
    "LayerSpec",
    "SimAM",
    "SpaceToDepth",
    "Upsample",
    "build_model",
    "dfl_decode",
    "fuse_conv_and_bn",
    "fuse_model",
    "get_block",
    "load_model_config",
    "make_divisible",
    "register_block",
    "registered_block",
    "registered_blocks",
    "shipped_model_names",
    "unregister_block",
]
