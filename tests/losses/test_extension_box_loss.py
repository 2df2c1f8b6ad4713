"""A box loss defined in this test file is usable everywhere lrnet takes one, without touching lrnet.

Alpha-IoU (loss = 1 - IoU^alpha, one option) registers with the decorator inside a fixture, so that
it is gone again after each test, and is then reachable through a spec string, `box_loss` and
`BoxLoss`, `DetectionLoss` on a model (also as the model config's `box_loss:`), and `lrnet
simulate`'s `run_simulation`. docs/EXTENDING.md ("A new box loss") shows the same loss as a file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from lrnet.errors import ConfigError
from lrnet.losses import (
    BoxGeometry,
    BoxLoss,
    BoxLossOptionError,
    BoxLossOptions,
    DetectionLoss,
    box_iou_value,
    box_loss,
    iou,
    parse_box_loss_spec,
    register_box_loss,
    registered_box_loss,
    registered_box_losses,
    unregister_box_loss,
)
from lrnet.nn import build_model, load_model_config
from lrnet.simulation import SimulationConfig, run_simulation

P = torch.tensor([[0.0, 0.0, 4.0, 2.0], [1.0, 1.0, 5.0, 9.0]])
G = torch.tensor([[2.0, 0.0, 6.0, 4.0], [0.0, 2.0, 4.0, 8.0]])


@dataclass(frozen=True)
class AlphaIoUOptions(BoxLossOptions):
    """alpha: the power of IoU (1 gives the IoU loss)."""

    alpha: float = 3.0

    def validate(self) -> None:
        if not self.alpha >= 1:
            raise ConfigError(
                f"alpha={self.alpha}: use alpha >= 1 (below 1 the gradient at IoU = 0 is infinite)"
            )


@pytest.fixture
def alpha_iou():
    """Register `alpha-iou` with the decorator for one test and remove it afterwards."""

    @register_box_loss("alpha-iou", options=AlphaIoUOptions)
    def alpha_iou_loss(geom: BoxGeometry, options: AlphaIoUOptions) -> Tensor:
        """1 - IoU^alpha."""
        return 1.0 - iou(geom) ** options.alpha

    yield alpha_iou_loss
    unregister_box_loss("alpha-iou")
    assert "alpha-iou" not in registered_box_losses()


def test_spec_function_and_module(alpha_iou):
    assert parse_box_loss_spec("alpha-iou:alpha=2") == ("alpha-iou", {"alpha": 2.0})
    want = 1.0 - box_iou_value(P, G, "iou") ** 2
    torch.testing.assert_close(box_loss(P, G, "alpha-iou", alpha="2"), want)
    torch.testing.assert_close(BoxLoss("alpha-iou", alpha=2)(P, G), want)
    assert BoxLoss("alpha-iou").config.alpha == 3.0  # the dataclass default
    assert "alpha-iou" in registered_box_losses()
    assert "alpha-iou" not in registered_box_losses(value_kind=True)
    with pytest.raises(ConfigError, match=r"'alpha-iou:alpha=0\.5': alpha=0\.5: use alpha >= 1"):
        parse_box_loss_spec("alpha-iou:alpha=0.5")
    with pytest.raises(BoxLossOptionError, match=r"it accepts: alpha=3\.0"):
        parse_box_loss_spec("alpha-iou:focal=none")


def test_detection_loss_on_a_model_and_as_the_config_default(alpha_iou):
    torch.manual_seed(0)
    cfg = load_model_config("yolov8n", nc=2)
    cfg["box_loss"] = "alpha-iou:alpha=2"  # a model YAML may name the new loss as its default
    model = build_model(cfg).train()
    preds = model(torch.rand(2, 3, 64, 64))
    batch = {
        "batch_idx": torch.tensor([0, 0, 1]),
        "cls": torch.tensor([0, 1, 1]),
        "bboxes": torch.tensor([[4.0, 4.0, 30.0, 20.0], [30.0, 30.0, 60.0, 62.0], [10.0, 8.0, 40.0, 50.0]]),
    }
    default = DetectionLoss.from_model(model)
    assert (default.box_kind, default.box_options) == ("alpha-iou", {"alpha": 2.0})
    total, items = default(preds, batch)
    assert torch.isfinite(total) and items[0] > 0
    # alpha = 1 is the IoU loss: the same box term, to the bit
    _, items_one = DetectionLoss.from_model(model, box_loss="alpha-iou", box_options={"alpha": 1})(
        preds, batch
    )
    _, items_iou = DetectionLoss.from_model(model, box_loss="iou")(preds, batch)
    assert torch.equal(items_one, items_iou)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_lrnet_simulate_runs_it(alpha_iou, tmp_path):
    assert "alpha-iou" in SimulationConfig().losses  # the default list is the registry's
    cfg = dataclasses.replace(
        SimulationConfig(points=2, iterations=5, target_sizes=(8.0,), seed=0), losses=("alpha-iou:alpha=2",)
    )
    run = run_simulation(cfg, tmp_path)
    curve = run.results[0].curves["iou"]
    assert run.results[0].loss == "alpha-iou:alpha=2" and curve[-1] > curve[0]
    assert (tmp_path / "results.json").is_file()


def test_context_manager_registers_only_inside():
    def alpha_iou_loss(geom: BoxGeometry, options: AlphaIoUOptions) -> Tensor:
        return 1.0 - iou(geom) ** options.alpha

    with registered_box_loss("alpha-iou", alpha_iou_loss, options=AlphaIoUOptions) as entry:
        assert entry.name == "alpha-iou" and "alpha-iou" in registered_box_losses()
    assert "alpha-iou" not in registered_box_losses()
    with pytest.raises(ConfigError, match="unknown box loss kind 'alpha-iou'"):
        parse_box_loss_spec("alpha-iou")


def test_registration_refuses_clashes_and_unusable_options():
    def loss(geom: BoxGeometry, options: BoxLossOptions) -> Tensor:
        return 1.0 - iou(geom)

    @dataclass(frozen=True)
    class NoDefault(BoxLossOptions):
        alpha: float

    @dataclass(frozen=True)
    class BadDefault(AlphaIoUOptions):
        alpha: float = 0.5

    with pytest.raises(ConfigError, match="'ciou' is already registered"):
        register_box_loss("ciou")(loss)
    with pytest.raises(ConfigError, match="without spaces"):
        register_box_loss("my:loss")(loss)
    with pytest.raises(ConfigError, match="'alpha' needs a default"):
        register_box_loss("no-default", options=NoDefault)(loss)
    with pytest.raises(ConfigError, match=r"its default options.*alpha=0\.5"):
        register_box_loss("bad-default", options=BadDefault)(loss)
    assert not {"my:loss", "no-default", "bad-default"} & set(registered_box_losses())
