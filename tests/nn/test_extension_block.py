"""A block defined in this file, registered for the test only, is usable from a model YAML.

The same example is walked through in docs/EXTENDING.md ("A new block"); nothing in lrnet is edited.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from lrnet.nn import LayerContext, build_model, registered_block, registered_blocks
from lrnet.nn.summary import layer_table, model_info


def twice_the_input(args: list, ctx: LayerContext) -> tuple[list, int]:
    """`[k]` -> `(c1, k)`: the block doubles its input's channels, whatever the model width."""
    return [ctx.in_channels[0], *args], 2 * ctx.in_channels[0]


class DoubleConv(nn.Module):
    """k x k conv + BN + SiLU at c1 channels, then a 1x1 conv + BN + SiLU to 2 * c1 channels."""

    def __init__(self, c1: int, k: int = 3) -> None:
        super().__init__()
        self.cv1 = nn.Conv2d(c1, c1, k, 1, k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.cv2 = nn.Conv2d(c1, 2 * c1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * c1)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn2(self.cv2(self.act(self.bn1(self.cv1(x))))))


MODEL_YAML = """\
nc: 80
backbone:
  - [-1, 1, Conv, [16, 3, 2]]    # 0  /2, 16 channels
  - [-1, 1, DoubleConv, [3]]     # 1  32 channels (twice the input)
  - [-1, 1, Conv, [32, 3, 2]]    # 2  /4
  - [-1, 1, DoubleConv, [1]]     # 3  64 channels
  - [-1, 1, Conv, [64, 3, 2]]    # 4  /8
head:
  - [[3, 4], 1, Detect, [nc]]    # 5  two levels, strides 4 and 8
"""


@pytest.fixture
def double_conv():
    """Register DoubleConv for one test only: it is removed on exit (no global state left behind)."""
    with registered_block(DoubleConv, channels=twice_the_input, bn_pairs=(("cv1", "bn1"), ("cv2", "bn2"))):
        yield DoubleConv


def test_new_block_builds_runs_and_fuses_from_a_yaml(tmp_path, double_conv, randomize_bn):
    path = tmp_path / "double.yaml"
    path.write_text(MODEL_YAML)
    torch.manual_seed(0)
    model = build_model(path, nc=3)

    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv",
        "DoubleConv",
        "Conv",
        "DoubleConv",
        "Conv",
        "Detect",
    ]
    assert model.layers[1].cv2.out_channels == 32 and model.layers[3].cv1.kernel_size == (1, 1)
    assert [row["args"] for row in layer_table(model)][1] == [16, 3]
    assert model.stride.tolist() == [4.0, 8.0] and model.nc == 3

    x = torch.randn(2, 3, 64, 64)
    model.train()
    maps = model(x)
    assert [tuple(m.shape) for m in maps] == [(2, 64 + 3, 16, 16), (2, 64 + 3, 8, 8)]

    randomize_bn(model)
    model.eval()
    with torch.no_grad():
        ref = model(x)
        assert ref.shape == (2, 16 * 16 + 8 * 8, 4 + 3)
        fused = copy.deepcopy(model).fuse()
        out = fused(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert isinstance(fused.layers[1].bn1, nn.Identity) and fused.layers[1].cv1.bias is not None
    box_err = ((out[..., :4] - ref[..., :4]).abs().max() / ref[..., :4].abs().max()).item()
    assert box_err < 1e-5 and (out[..., 4:] - ref[..., 4:]).abs().max().item() < 1e-5

    # folding trades each BatchNorm's weight and bias (2c) for a conv bias (c), the DoubleConvs' included
    info = model_info(model, 64)
    n_bn = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert info["params"] - info["params_fused"] == n_bn and n_bn > 16 + 32 + 32 + 64


def test_block_is_unknown_outside_the_fixture(tmp_path):
    assert "DoubleConv" not in registered_blocks()
    path = tmp_path / "double.yaml"
    path.write_text(MODEL_YAML)
    with pytest.raises(ValueError, match="unknown module 'DoubleConv'"):
        build_model(path, nc=3)
