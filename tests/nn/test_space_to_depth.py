import pytest
import torch
import torch.nn.functional as F

from lrnet.nn import LFF, SpaceToDepth


def _depth_to_space(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of SpaceToDepth written independently: scatter the four sub-grids back, crop the pad."""
    b, c4, h2, w2 = y.shape
    c = c4 // 4
    x = torch.empty(b, c, 2 * h2, 2 * w2, dtype=y.dtype)
    for k, (r, col) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        x[:, :, r::2, col::2] = y[:, k * c : (k + 1) * c]
    return x[..., :h, :w]


@pytest.mark.parametrize("h,w", [(8, 6), (7, 6), (6, 9), (5, 5), (1, 1)])
def test_space_to_depth_is_exactly_invertible(h, w):
    x = torch.randn(2, 3, h, w)
    y = SpaceToDepth()(x)
    assert y.shape == (2, 12, (h + 1) // 2, (w + 1) // 2)
    assert torch.equal(_depth_to_space(y, h, w), x)
    if h % 2 == 0 and w % 2 == 0:
        assert y.numel() == x.numel()  # Eq. 8: nothing discarded, nothing added


def test_space_to_depth_channel_order_and_replicate_padding():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5)
    y = SpaceToDepth()(x)
    p = F.pad(x, (0, 1, 0, 1), mode="replicate")
    assert torch.equal(y[:, 0:2], p[..., 0::2, 0::2])  # X00
    assert torch.equal(y[:, 2:4], p[..., 0::2, 1::2])  # X01: even rows, odd columns
    assert torch.equal(y[:, 4:6], p[..., 1::2, 0::2])  # X10
    assert torch.equal(y[:, 6:8], p[..., 1::2, 1::2])  # X11
    assert torch.equal(y[0, 6, -1, -1], x[0, 0, -1, -1])  # padded corner replicates the border


def test_lff_shapes_and_params():
    torch.manual_seed(0)
    lff = LFF(16, 32, k=3)
    assert lff(torch.randn(1, 16, 10, 12)).shape == (1, 32, 5, 6)
    assert lff(torch.randn(1, 16, 9, 11)).shape == (1, 32, 5, 6)
    assert sum(p.numel() for p in lff.parameters()) == 4 * 16 * 32 * 9 + 2 * 32
    assert sum(p.numel() for p in LFF(16, 32, k=1).parameters()) == 4 * 16 * 32 + 2 * 32
