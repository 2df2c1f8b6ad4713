import torch
import torch.nn.functional as F

from lrnet.nn import SPPF, Bottleneck, C2f, Concat, Conv, Upsample


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_conv_is_conv_bn_silu_with_same_padding():
    torch.manual_seed(0)
    conv = Conv(3, 8, 3, 2).eval()
    assert conv.conv.bias is None and conv.bn.eps == 1e-3 and conv.bn.momentum == 0.03
    x = torch.randn(2, 3, 10, 9)
    y = conv(x)
    assert y.shape == (2, 8, 5, 5)
    bn = conv.bn
    ref = F.silu(
        F.batch_norm(
            F.conv2d(x, conv.conv.weight, None, 2, 1),
            bn.running_mean,
            bn.running_var,
            bn.weight,
            bn.bias,
            False,
            0.0,
            bn.eps,
        )
    )
    assert torch.allclose(y, ref, atol=1e-6)


def test_c2f_param_count_by_hand_and_forward_composition():
    torch.manual_seed(0)
    block = C2f(32, 32, n=1, shortcut=True).eval()
    # cv1 1x1 32->32 (+BN 64), bottleneck 2 x (3x3 16->16 + BN 32), cv2 1x1 48->32 (+BN 64)
    assert _n_params(block) == (32 * 32 + 64) + 2 * (16 * 16 * 9 + 32) + (48 * 32 + 64)
    x = torch.randn(1, 32, 8, 8)
    a, b = block.cv1(x).chunk(2, 1)
    bott = block.m[0]
    c = b + bott.cv2(bott.cv1(b))  # shortcut active: c1 == c2
    assert torch.allclose(block(x), block.cv2(torch.cat((a, b, c), 1)), atol=1e-6)


def test_bottleneck_adds_only_with_shortcut_and_equal_channels():
    assert Bottleneck(8, 8, shortcut=True).add
    assert not Bottleneck(8, 8, shortcut=False).add
    assert not Bottleneck(8, 16, shortcut=True).add
    assert all(not m.add for m in C2f(16, 16, n=2, shortcut=False).m)


def test_sppf_equals_parallel_pools_5_9_13():
    torch.manual_seed(0)
    sppf = SPPF(8, 6, k=5).eval()
    x = torch.randn(1, 8, 11, 13)
    y = sppf.cv1(x)
    pools = [F.max_pool2d(y, k, 1, k // 2) for k in (5, 9, 13)]  # chained 5x5 pools == SPP(5, 9, 13)
    assert torch.allclose(sppf(x), sppf.cv2(torch.cat([y, *pools], 1)), atol=1e-6)
    assert sppf(x).shape == (1, 6, 11, 13)


def test_concat_and_upsample():
    a, b = torch.randn(1, 2, 3, 3), torch.randn(1, 5, 3, 3)
    assert torch.equal(Concat(1)([a, b]), torch.cat((a, b), 1))
    up = Upsample(2, "nearest")(a)
    assert (
        up.shape == (1, 2, 6, 6) and torch.equal(up[..., ::2, ::2], a) and torch.equal(up[..., 1::2, 1::2], a)
    )
