"""A run's assigner: what it leaves to the model is filled from the model's config
(`with_model_assigner`), what it names wins, and args.yaml, checkpoints and resumed runs record the
resolved values."""

from __future__ import annotations

import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.nn import build_model
from lrnet.training.train_config import TrainConfig
from lrnet.training.trainer import Trainer, train, with_model_assigner
from lrnet.weights.checkpoint import save_checkpoint
from tests.fixtures.tiny_data import write_tiny_yolo
from tests.losses.test_default_assigner import custom_yaml


def test_a_run_fills_what_it_leaves_to_the_model_and_keeps_what_it_names(tmp_path):
    path = str(custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\n"))
    filled = with_model_assigner(TrainConfig(model=path))
    assert (filled.assign_metric, filled.assign_outside) == ("nwd", True)
    named = with_model_assigner(TrainConfig(model=path, assign_metric="iou", assign_outside=False))
    assert (named.assign_metric, named.assign_outside) == ("iou", False)
    half = with_model_assigner(TrainConfig(model=path, assign_outside=False))
    assert (half.assign_metric, half.assign_outside) == ("nwd", False)
    plain = with_model_assigner(TrainConfig(model="lrnet-n"))
    assert (plain.assign_metric, plain.assign_outside, plain.assign_min_side) == ("ciou", False, 0.0)
    base = with_model_assigner(TrainConfig(model="yolov8n"))
    assert base.assign_min_side == 16.0 and TrainConfig().assign_min_side is None
    off = with_model_assigner(TrainConfig(model="yolov8n", assign_min_side=0.0))
    assert off.assign_min_side == 0.0  # 0 names YOLOv8's rule: it is not "not given"
    assert TrainConfig(model=path).assign_metric == "" and TrainConfig().assign_outside is None
    with pytest.raises(ConfigError, match=r"assign_metric='nwdd' is not allowed"):
        TrainConfig(assign_metric="nwdd")
    trainer = Trainer(TrainConfig(model=path, data="unused.yaml", project=str(tmp_path)))
    assert (trainer.cfg.assign_metric, trainer.cfg.assign_outside) == ("nwd", True)
    assert not (tmp_path / "train").exists()  # resolving writes nothing


def test_a_resumed_run_keeps_the_assigner_it_trained_with(tmp_path):
    """A checkpoint written before the options existed trained with YOLOv8's assigner, whatever the
    model's default is now; a newer one records its resolved values."""
    path = str(custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\n"))
    model = build_model(path, nc=2)
    args = TrainConfig(model=path, data="unused.yaml").to_dict()
    for key in ("assign_metric", "assign_outside", "assign_min_side"):
        args.pop(key)
    base = {"model": model.state_dict(), "model_cfg": model.cfg, "epoch": 0}
    old = save_checkpoint(tmp_path / "old" / "weights" / "last.pt", {**base, "train_args": args})
    resumed = Trainer(TrainConfig(resume=str(old)))
    cfg = resumed.cfg
    assert (cfg.assign_metric, cfg.assign_outside, cfg.assign_min_side) == ("ciou", False, 0.0)
    recorded = {**args, "assign_metric": "dotd", "assign_outside": True, "assign_min_side": 4.0}
    new = save_checkpoint(tmp_path / "new" / "weights" / "last.pt", {**base, "train_args": recorded})
    cfg = Trainer(TrainConfig(resume=str(new))).cfg
    assert (cfg.assign_metric, cfg.assign_outside, cfg.assign_min_side) == ("dotd", True, 4.0)


def test_a_yaml_with_an_assigner_trains_with_it_and_records_it(tmp_path):
    data = write_tiny_yolo(tmp_path / "data", n_train=4, n_val=2, size=64)
    path = str(custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\n"))
    run = train(
        model=path, data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", threads=1,
        val=False, plots=False, project=str(tmp_path / "runs"), name="r", tensorboard=False,
    )  # fmt: skip
    saved = torch.load(run.last, weights_only=True)["train_args"]
    assert (saved["assign_metric"], saved["assign_outside"], saved["assign_min_side"]) == ("nwd", True, 16.0)
    args_yaml = (run.save_dir / "args.yaml").read_text()
    assert "assign_metric: nwd\nassign_outside: true\nassign_min_side: 16.0\n" in args_yaml
