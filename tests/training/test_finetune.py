"""Fine-tuning (the issue's must-show): train briefly, then start from that checkpoint.

Same class count: the epoch-0 validation of the new run equals the source checkpoint's metrics.
Another class count (single_cls): exactly the class-branch last layers are re-initialised. Also
freezing, the optimizer choice, callbacks and the run's images on a real (tiny) run.
"""

from __future__ import annotations

import pytest
import torch

from lrnet.training.train_config import TrainConfig
from lrnet.training.trainer import Trainer, train
from lrnet.weights.checkpoint import load_checkpoint
from tests.fixtures.tiny_data import write_tiny_yolo

BASE = dict(model="yolov8n", epochs=1, imgsz=128, batch=8, workers=0, device="cpu", tensorboard=False)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    data = write_tiny_yolo(root / "data", n_train=16, n_val=4, size=128)
    result = train(data=str(data), project=str(root / "runs"), name="src", seed=1, **BASE)
    return data, result, root


def test_same_nc_epoch0_validation_equals_the_source_checkpoint(source_run):
    data, src, root = source_run
    ckpt = load_checkpoint(src.best)
    seen: list[str] = []
    result = train(
        data=str(data),
        project=str(root / "runs"),
        name="same",
        weights=str(src.best),
        plots=False,
        callbacks={
            "on_train_start": lambda t: seen.append("start"),
            "on_epoch_end": lambda t, m: seen.append("end"),
        },
        **BASE,
    )
    assert result.initial_metrics and set(result.initial_metrics) == set(ckpt["metrics"])
    for key, value in ckpt["metrics"].items():
        assert result.initial_metrics[key] == pytest.approx(value, abs=1e-9), key
    assert seen == ["start", "end"]


def test_other_nc_reinitialises_exactly_the_class_branch_last_layers(source_run):
    data, src, root = source_run
    cfg = TrainConfig(
        data=str(data),
        project=str(root / "runs"),
        name="nc1",
        weights=str(src.best),
        single_cls=True,
        val=False,
        freeze="backbone",
        **BASE,
    )
    trainer = Trainer(cfg)
    before = load_checkpoint(src.best)["model"]
    trainer.train()
    report = trainer.transfer_report
    expected = sorted(f"layers.22.cls.{i}.2.{p}" for i in range(3) for p in ("weight", "bias"))
    assert sorted(report.reinitialised) == expected
    assert sorted(report.left_at_init) == expected  # nothing else is left at initialisation
    assert trainer.model.nc == 1
    # freeze=backbone: the 10 backbone layers (weights and BN statistics) did not move.
    after = trainer.model.state_dict()
    for key, value in after.items():
        if key.startswith(tuple(f"layers.{i}." for i in range(10))) and value.is_floating_point():
            assert torch.equal(value, before[key]), key
    # ... while the other layers' BN statistics did (train mode outside the frozen part).
    assert not torch.equal(after["layers.12.cv1.bn.running_mean"], before["layers.12.cv1.bn.running_mean"])
    for name in ("train_batch0.jpg", "labels.png"):
        assert (trainer.save_dir / name).is_file(), name
