"""One DFL decode for the head and the loss: the loss arithmetic is unchanged, the head agrees with its
former 1x1-convolution form to float32 rounding and is counted as the same FLOPs."""

import torch
import torch.nn.functional as F

from lrnet.losses.detection import dfl_decode as loss_dfl_decode
from lrnet.nn import DFL, dfl_decode
from lrnet.nn.flops import flop_counter


def test_loss_and_head_use_the_one_function():
    assert loss_dfl_decode is dfl_decode


def test_decode_is_bit_identical_to_the_softmax_dot_bins_formula():
    torch.manual_seed(0)
    logits = torch.randn(257, 64) * 4
    bins = torch.arange(16, dtype=torch.float32)
    assert torch.equal(dfl_decode(logits, 16), logits.view(257, 4, 16).softmax(-1) @ bins)
    logits.requires_grad_(True)
    (dfl_decode(logits, 16) * torch.arange(4.0)).sum().backward()
    grad = logits.grad.clone()
    logits.grad = None
    ((logits.view(257, 4, 16).softmax(-1) @ bins) * torch.arange(4.0)).sum().backward()
    assert torch.equal(grad, logits.grad)


def test_head_dfl_agrees_with_its_former_convolution_form():
    torch.manual_seed(0)
    x = torch.randn(3, 64, 500) * 4
    dfl = DFL(16)
    probs = x.view(3, 4, 16, 500).transpose(1, 2).softmax(1)  # (B, reg_max, 4, A)
    conv_form = F.conv2d(probs, dfl.conv.weight).view(3, 4, 500)
    out = dfl(x)
    assert out.shape == (3, 4, 500)
    assert torch.allclose(out, conv_form, rtol=1e-6, atol=1e-6)
    assert torch.equal(out, dfl_decode(x.transpose(1, 2), 16).transpose(1, 2))


def test_head_dfl_is_counted_like_a_1x1_convolution():
    x = torch.randn(2, 64, 100)
    counter = flop_counter()
    with counter:
        DFL(16)(x)
    assert counter.get_total_flops() == 2 * 2 * 100 * 4 * 16  # B * A * 4 sides * 16 bins multiply-adds
