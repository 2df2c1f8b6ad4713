"""BatchNorm folding: turn Conv2d + BatchNorm2d into one biased Conv2d for inference."""

from __future__ import annotations

import torch
from torch import nn

from lrnet.nn.conv import Conv


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


def fuse_model(model: nn.Module) -> nn.Module:
    """Fold the BatchNorm of every `Conv` block into its convolution, in place, and set eval mode.

    The fused model is meant for inference (its outputs equal the unfused eval outputs); BatchNorm
    statistics no longer exist afterwards, so do not train it.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, Conv) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_and_bn(module.conv, module.bn)
            module.bn = nn.Identity()
    return model
