"""LR-Net / YOLOv8 networks: blocks, the detection head, configs and the model builder."""

from lrnet.nn.blocks import SPPF, Bottleneck, C2f, Concat, Upsample
from lrnet.nn.config import LayerSpec, load_model_config, make_divisible, shipped_model_names
from lrnet.nn.conv import Conv
from lrnet.nn.fuse import fuse_conv_and_bn, fuse_model
from lrnet.nn.head import DFL, Detect
from lrnet.nn.lff import LFF
from lrnet.nn.model import DetectionModel, build_model
from lrnet.nn.simam import SimAM
from lrnet.nn.space_to_depth import SpaceToDepth

__all__ = [
    "DFL",
    "LFF",
    "SPPF",
    "Bottleneck",
    "C2f",
    "Concat",
    "Conv",
    "Detect",
    "DetectionModel",
    "LayerSpec",
    "SimAM",
    "SpaceToDepth",
    "Upsample",
    "build_model",
    "fuse_conv_and_bn",
    "fuse_model",
    "load_model_config",
    "make_divisible",
    "shipped_model_names",
]
