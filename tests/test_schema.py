"""Option ranges declared once (lrnet.schema) and applied to TrainConfig and ValJob alike."""

import math

import pytest

from lrnet.engine.inference.validate_run import ValJob
from lrnet.engine.training.train_config import TrainConfig
from lrnet.errors import ConfigError
from lrnet.schema import Choice, Range


def test_range_bounds_and_description():
    r = Range(0, 1, lo_open=True)
    r.check("lrf", 1.0)
    for bad in (0.0, 1.5, math.nan, math.inf, "0.5", True):
        with pytest.raises(ConfigError, match="lrf="):
            r.check("lrf", bad)
    assert r.describe() == "(0, 1]"
    assert Range(1).describe() == ">= 1"
    assert Range(32, 64, multiple_of=32).describe() == "a multiple of 32 [32, 64]"
    with pytest.raises(ConfigError, match=r"use a multiple of 32"):
        Range(32, multiple_of=32).check("size", 48)
    with pytest.raises(ConfigError, match="one of sgd, adamw"):
        Choice(("sgd", "adamw")).check("optimizer", "adam")


@pytest.mark.parametrize(
    ("key", "value"),
    [("nbs", 0), ("ema_tau", 0.0), ("mosaic", 5.0), ("epochs", 0), ("lr0", math.nan), ("conf", 2.0),
     ("iou", -0.5), ("max_det", -1), ("synthetic_train", -2), ("momentum", 1.0)],
)  # fmt: skip
def test_train_config_refuses_out_of_range(key, value):
    with pytest.raises(ConfigError, match=key):
        TrainConfig(**{key: value})


def test_train_config_yaml_uses_the_same_rules(tmp_path):
    cfg = tmp_path / "hyp.yaml"
    cfg.write_text("ema_tau: 0\n")
    with pytest.raises(ConfigError, match=r"ema_tau=0 is out of range; use > 0"):
        TrainConfig.from_yaml(cfg)


@pytest.mark.parametrize(("key", "value"), [("conf", 2.0), ("iou", -0.5), ("max_det", -1), ("imgsz", 0)])
def test_val_job_refuses_out_of_range(key, value):
    with pytest.raises(ConfigError, match=key):
        ValJob(weights="w.pt", data="d.yaml", **{key: value})
