import copy

import pytest
import torch
from torch import nn

from lrnet.errors import ConfigError
from lrnet.nn import fuse_conv_and_bn, fuse_model, register_block, shipped_model_names, unregister_block


def test_fuse_conv_and_bn_matches_float64_composition(randomize_bn):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, 2, 1, bias=False)
    bn = nn.BatchNorm2d(6, eps=1e-3)
    randomize_bn(bn)
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
def test_fused_model_outputs_equal_unfused(shipped_model, randomize_bn, name):
    torch.manual_seed(0)
    model = copy.deepcopy(shipped_model(name))
    randomize_bn(model)
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


def test_conv_bn_pairs_inside_a_sequential_are_folded(randomize_bn):
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
    randomize_bn(seq)
    seq.eval()
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        ref = seq(x)
        fuse_model(seq)
        out = seq(x)
    assert isinstance(seq[1], nn.Identity)
    assert isinstance(seq[3], nn.BatchNorm2d)  # follows a ReLU, not a conv: left alone
    assert torch.allclose(out, ref, atol=1e-6)


def test_misdeclared_bn_pairs_raise_config_error():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.norm = nn.GroupNorm(1, 2)

    register_block("OddNorm", channels="same_as_input", bn_pairs=(("conv", "norm"),))(Odd)
    try:
        with pytest.raises(ConfigError, match=r"'OddNorm'.*GroupNorm"):
            fuse_model(Odd())
    finally:
        unregister_block("OddNorm")
