"""BatchNorm folding: turn Conv2d + BatchNorm2d into one biased Conv2d for inference."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from lrnet.errors import ConfigError
from lrnet.nn.registry import block_spec_of


@torch.no_grad()
def fuse_conv_and_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a Conv2d with bias equal to bn(conv(x)) in eval mode (computed in float64).

    w' = w * g / sqrt(var + eps), b' = beta + (b - mean) * g / sqrt(var + eps).
    """
    fused = torch.nn.utils.skip_init(  # weights are overwritten below: skip the random init
        nn.Conv2d,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    fused.weight.copy_((conv.weight.double() * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
    fused.bias.copy_((bn.bias.double() + (bias - bn.running_mean.double()) * scale).to(conv.weight.dtype))
    fused.requires_grad_(conv.weight.requires_grad)
    return fused


def _fold_pair(block: nn.Module, conv_name: str, bn_name: str, block_name: str) -> None:
    """Fold `block.<bn_name>` into `block.<conv_name>`; the BatchNorm becomes an Identity."""
    conv, bn = getattr(block, conv_name, None), getattr(block, bn_name, None)
    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        setattr(block, conv_name, fuse_conv_and_bn(conv, bn))
        setattr(block, bn_name, nn.Identity())
    elif not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.Identity)):  # Identity: already folded
        raise ConfigError(
            f"block {block_name!r} declares bn_pairs ({conv_name!r}, {bn_name!r}) but holds "
            f"{type(conv).__name__} / {type(bn).__name__} there; name an nn.Conv2d and the "
            "nn.BatchNorm2d applied directly to its output"
        )


def _fold_sequential(seq: nn.Sequential) -> None:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential (order = data flow)."""
    children = list(seq.named_children())
    for (conv_name, conv), (bn_name, bn) in pairwise(children):
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            _fold_pair(seq, conv_name, bn_name, "nn.Sequential")


def fuse_model(model: nn.Module) -> nn.Module:
    """Fold BatchNorms into their convolutions, in place, and set eval mode. Returns the model.

    Folds the `bn_pairs` every registered block declares (`lrnet.nn.registry.register_block`, e.g.
    Conv's ("conv", "bn")) and every Conv2d -> BatchNorm2d pair inside an nn.Sequential. The fused
    model is meant for inference (its outputs equal the unfused eval outputs); BatchNorm statistics
    no longer exist afterwards, so do not train it.
    """
    model.eval()
    for module in list(model.modules()):
        spec = block_spec_of(module)
        if spec is not None:
            for conv_name, bn_name in spec.bn_pairs:
                _fold_pair(module, conv_name, bn_name, spec.name)
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
    return model
