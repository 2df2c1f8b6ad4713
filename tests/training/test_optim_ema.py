"""Parameter groups, schedule, warm-up, accumulation and EMA against hand-computed values."""

import math

import pytest
import torch
from torch import nn

from lrnet.training.ema import YOLOV8_EMA_TAU, ModelEMA, auto_ema_tau
from lrnet.training.optim import (
    GROUP_BIAS,
    accumulation_steps,
    apply_warmup,
    build_optimizer,
    linear_lr_lambda,
    split_parameters,
    warmup_iterations,
)


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=True))


def test_split_parameters_puts_decay_only_on_conv_weights():
    net = _net()
    decay, no_decay, bias = split_parameters(net)
    assert [p.shape for p in decay] == [net[0].weight.shape, net[2].weight.shape]
    assert no_decay == [net[1].weight]
    assert {id(p) for p in bias} == {id(net[1].bias), id(net[2].bias)}
    assert len(decay) + len(no_decay) + len(bias) == len(list(net.parameters()))
    opt = build_optimizer(net, 0.01, 0.937, 5e-4)
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0, 0.0]
    assert opt.defaults["nesterov"]


def test_linear_lr_lambda_endpoints():
    f = linear_lr_lambda(100, 0.01)
    assert f(0) == pytest.approx(1.0)
    assert f(50) == pytest.approx(0.5 * 0.99 + 0.01)
    assert f(100) == pytest.approx(0.01)
    assert f(200) == pytest.approx(0.01)


def test_warmup_length_rules():
    assert warmup_iterations(3, 1000, 300) == 3000
    assert warmup_iterations(3, 10, 300) == 100  # min 100 iterations as YOLOv8
    assert warmup_iterations(3, 10, 6) == 20  # but at most a third of a tiny run (60 iterations)
    assert warmup_iterations(0, 10, 6) == 0


def test_apply_warmup_interpolates_lr_and_momentum():
    net = _net()
    opt = build_optimizer(net, 0.01, 0.937, 5e-4)
    for g in opt.param_groups:
        g["initial_lr"] = 0.01
    apply_warmup(opt, 0, 100, 1.0, 0.1, 0.8, 0.937)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0, 0.0, 0.1])
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.8)
    apply_warmup(opt, 25, 100, 0.5, 0.1, 0.8, 0.937)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25 * 0.005)
    assert opt.param_groups[GROUP_BIAS]["lr"] == pytest.approx(0.1 + 0.25 * (0.005 - 0.1))
    assert opt.param_groups[1]["momentum"] == pytest.approx(0.8 + 0.25 * 0.137)


def test_accumulation_ramps_to_nominal_batch():
    assert accumulation_steps(0, 100, 64, 16) == 1
    assert accumulation_steps(50, 100, 64, 16) == round(2.5)
    assert accumulation_steps(100, 100, 64, 16) == 4
    assert accumulation_steps(5, 0, 64, 128) == 1


def test_ema_matches_hand_recursion_and_tracks_buffers():
    torch.manual_seed(0)
    net = _net()
    ema = ModelEMA(net, decay=0.9, tau=2.0)
    reference = {k: v.clone().double() for k, v in net.state_dict().items() if v.dtype.is_floating_point}
    for step in range(1, 4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            net[1].running_mean.add_(1.0)
        ema.update(net)
        d = 0.9 * (1 - math.exp(-step / 2.0))
        for k, v in net.state_dict().items():
            if k in reference:
                reference[k] = reference[k] * d + (1 - d) * v.double()
    for k, v in ema.ema.state_dict().items():
        if k in reference:
            torch.testing.assert_close(v.double(), reference[k], rtol=1e-6, atol=1e-6)
    assert ema.updates == 3
    assert not any(p.requires_grad for p in ema.ema.parameters())


def test_auto_ema_tau_is_a_quarter_of_the_run_capped_at_yolov8s():
    assert auto_ema_tau(435) == pytest.approx(108.75)  # the HIT-UAV protocol's 15 x 29 updates
    assert auto_ema_tau(8000) == 2000.0 == YOLOV8_EMA_TAU  # from here on the paper's value
    assert auto_ema_tau(30_000) == 2000.0  # the paper's VisDrone run: 300 epochs x ~101 updates
    assert auto_ema_tau(1) == 0.25
    # the point of it: the decay at the end of a short run, computed by hand
    assert 0.9999 * (1 - math.exp(-435 / 2000.0)) == pytest.approx(0.1955, abs=1e-4)
    assert 0.9999 * (1 - math.exp(-435 / auto_ema_tau(435))) == pytest.approx(0.9816, abs=1e-4)
    with pytest.raises(ValueError, match="total_updates=0"):
        auto_ema_tau(0)


def test_the_trainer_resolves_auto_tau_from_the_runs_length_and_keeps_a_given_one(tmp_path, capsys):
    from lrnet.training.train_config import TrainConfig
    from lrnet.training.trainer import Trainer
    from tests.fixtures.tiny_data import write_tiny_yolo

    data = write_tiny_yolo(tmp_path / "data", n_train=8, n_val=2, size=64)
    base = dict(model="yolov8n", data=str(data), imgsz=64, batch=4, nbs=4, workers=0, device="cpu", threads=1,
                val=False, plots=False, tensorboard=False, project=str(tmp_path / "runs"))  # fmt: skip
    auto = Trainer(TrainConfig(epochs=3, name="auto", **base))
    auto.train()
    assert auto.ema.tau == 3 * 2 * 0.25  # 3 epochs x 2 batches of 4, one update each (nbs = batch)
    assert auto.ema.updates == 6
    assert "EMA tau auto: 1.5 (6 optimizer updates in 3 epochs)" in capsys.readouterr().out
    given = Trainer(TrainConfig(epochs=1, name="given", ema_tau=50.0, **base))
    given.train()
    assert given.ema.tau == 50.0 and "EMA tau auto" not in capsys.readouterr().out
