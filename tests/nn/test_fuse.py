import copy

import pytest
import torch
from torch import nn

from lrnet.nn import fuse_conv_and_bn, shipped_model_names


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine values so folding is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def test_fuse_conv_and_bn_matches_float64_composition():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, 2, 1, bias=False)
    bn = nn.BatchNorm2d(6, eps=1e-3)
    _randomize_bn(bn)
    bn.eval()
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    ref = torch.nn.functional.batch_norm(
        torch.nn.functional.conv2d(x, conv.weight.double(), None, 2, 1),
        bn.running_mean.double(),
        bn.running_var.double(),
        bn.weight.double(),
        bn.bias.double(),
        False,
        0.0,
        1e-3,
    )
    fused = fuse_conv_and_bn(conv, bn)
    assert fused.bias is not None
    assert torch.allclose(fused(x.float()).double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", shipped_model_names())
def test_fused_model_outputs_equal_unfused(shipped_model, name):
    torch.manual_seed(0)
    model = copy.deepcopy(shipped_model(name))
    _randomize_bn(model)
    model.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        fused = model.fuse()
        assert fused is model and not model.training
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        out = model(x)
    # relative to the magnitude of each output part (pixel boxes and [0, 1] scores)
    box_err = ((out[..., :4] - ref[..., :4]).abs().max() / ref[..., :4].abs().max()).item()
    score_err = (out[..., 4:] - ref[..., 4:]).abs().max().item()
    assert box_err < 1e-5 and score_err < 1e-5
