"""Freezing, the optimizer choice, the cosine schedule, multi-scale batches, callbacks, TensorBoard and
the images a run writes; each against a hand-worked value or an independent computation."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.nn import build_model
from lrnet.training.batch_plots import batch_mosaic, save_batch_image
from lrnet.training.callbacks import Callbacks, tensorboard_callbacks
from lrnet.training.optim import apply_warmup
from lrnet.training.optimizer_choice import (
    auto_iterations,
    build_named_optimizer,
    cosine_lr_lambda,
    resolve_optimizer,
)
from lrnet.training.recipe import (
    freeze_layers,
    frozen_layer_count,
    keep_frozen_norms_eval,
    multi_scale_batch,
)
from lrnet.training.run_logging import epoch_scalars
from lrnet.training.train_config import TrainConfig


def test_freeze_backbone_and_n_layers_keep_weights_and_bn_statistics():
    model = build_model("yolov8n", nc=2)
    assert frozen_layer_count(model, "backbone") == 10 and frozen_layer_count(model, "3") == 3
    assert frozen_layer_count(model, "") == 0
    norms = freeze_layers(model, frozen_layer_count(model, "backbone"))
    assert norms and all(not p.requires_grad for p in model.layers[:10].parameters())
    trainable = [n for n, p in model.layers[10:].named_parameters() if not p.requires_grad]
    assert trainable == ["12.dfl.conv.weight"]  # only the fixed DFL bins, frozen by design
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    keep_frozen_norms_eval(norms)
    model(torch.rand(2, 3, 64, 64))  # a training-mode forward updates BN statistics of unfrozen layers only
    after = model.state_dict()
    assert torch.equal(after["layers.0.bn.running_mean"], before["layers.0.bn.running_mean"])
    assert not torch.equal(after["layers.12.cv1.bn.running_mean"], before["layers.12.cv1.bn.running_mean"])
    assert all(not m.training for m in norms)


@pytest.mark.parametrize("bad", ["abc", "-2", "1.5"])
def test_bad_freeze_values_are_refused(bad):
    with pytest.raises(ConfigError, match="freeze"):
        TrainConfig(freeze=bad)
    with pytest.raises(ConfigError, match="freeze=23"):
        frozen_layer_count(build_model("yolov8n", nc=1), "23")  # would freeze the head too


def test_optimizer_auto_follows_the_yolov8_rule():
    assert auto_iterations(1000, 16, 64, 100) == math.ceil(1000 / 64) * 100
    assert resolve_optimizer("auto", 0.01, 0.937, 80, 10_001) == ("sgd", 0.01, 0.9)
    kind, lr, momentum = resolve_optimizer("auto", 0.01, 0.937, 80, 500)
    assert kind == "adamw" and lr == 0.000119 and momentum == 0.9  # round(0.002 * 5 / 84, 6)
    assert resolve_optimizer("auto", 0.01, 0.937, 1, 500)[1] == 0.002
    assert resolve_optimizer("adamw", 0.003, 0.95, 80, 10**6) == ("adamw", 0.003, 0.95)
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="adam")


def test_adamw_groups_decay_and_warmup_sets_beta1():
    model = build_model("yolov8n", nc=2)
    opt = build_named_optimizer(model, "adamw", 0.002, 0.9, 5e-4)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0, 0.0]
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == sum(1 for p in model.parameters() if p.requires_grad)
    for g in opt.param_groups:
        g["initial_lr"] = 0.002
    apply_warmup(opt, 5, 10, 1.0, 0.0, 0.8, 0.9)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.85) and opt.param_groups[0]["lr"] == 0.001


def test_cosine_schedule_hand_values():
    f = cosine_lr_lambda(10, 0.01)
    assert f(0) == 1.0 and f(10) == pytest.approx(0.01) and f(5) == pytest.approx((1 + 0.01) / 2)
    assert f(2.5) == pytest.approx(1 - (1 - math.cos(math.pi / 4)) / 2 * 0.99)


def test_multi_scale_sizes_are_stride_multiples_in_range_and_boxes_follow():
    rng = np.random.default_rng(0)
    imgs = torch.rand(2, 3, 128, 128)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    sizes = set()
    for _ in range(200):
        out, b = multi_scale_batch(imgs, boxes, 128, 32, rng)
        s = out.shape[-1]
        sizes.add(s)
        assert out.shape[-2] == s and s % 32 == 0 and 64 <= s <= 192
        assert torch.allclose(b, boxes * s / 128)
    assert sizes == {64, 96, 128, 160, 192}


def test_callbacks_api_and_tensorboard_scalars(tmp_path):
    calls = []
    cb = Callbacks({"on_epoch_end": lambda t, m: calls.append(m["metrics/AP"])})
    cb.add("on_train_end", lambda t, r: calls.append("end"))
    metrics = epoch_scalars(2, [1.0, 2.0, 3.0], [0.01, 0.01, 0.02], {"AP": 0.25, "AP50": 0.5})
    assert metrics["epoch"] == 3 and metrics["train/cls_loss"] == 2.0 and metrics["lr/pg2"] == 0.02
    cb.run("on_epoch_end", None, metrics)
    cb.run("on_train_end", None, None)
    assert calls == [0.25, "end"]
    with pytest.raises(ConfigError, match="on_epoch_ends"):
        cb.add("on_epoch_ends", print)
    with pytest.raises(ConfigError, match="not a function"):
        cb.add("on_epoch_end", 3)
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = tensorboard_callbacks(tmp_path / "tb")
    events["on_epoch_end"](None, metrics)
    events["on_train_end"](None, None)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert "metrics/AP" in acc.Tags()["scalars"] and "train/box_loss" in acc.Tags()["scalars"]
    (point,) = acc.Scalars("metrics/AP")
    assert point.step == 3 and point.value == pytest.approx(0.25)


def test_tensorboard_missing_gives_a_one_line_notice(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert tensorboard_callbacks(tmp_path / "tb") is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "tensorboard is not installed" in out[0]


def test_train_batch_image_draws_each_box_where_it_is(tmp_path):
    img = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    batch = {
        "img": img,
        "batch_idx": torch.tensor([0, 1]),
        "cls": torch.tensor([0, 1]),
        "bboxes": torch.tensor([[4.0, 4.0, 12.0, 12.0], [20.0, 8.0, 28.0, 30.0]]),
    }
    grid = batch_mosaic(batch)
    assert grid.shape == (32, 64, 3)  # two images side by side
    assert grid[4, 8].any() and grid[8, 32 + 24].any() is not None  # box edges drawn
    assert not grid[20, 20].any() and not grid[20, 32 + 5].any()  # elsewhere untouched
    path = save_batch_image(batch, tmp_path / "train_batch0.jpg")
    assert path.is_file() and path.stat().st_size > 0


def test_yaml_typed_freeze_and_classes_are_normalised(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("freeze: 10\nclasses: [2, 0]\ndegrees: 10\n")
    cfg = TrainConfig.from_yaml(cfg_file)
    assert cfg.freeze == "10" and cfg.classes == "0,2" and cfg.degrees == 10
