"""The similarity options of training, validation and prediction: ranges, data constants, CLI errors."""

from __future__ import annotations

import argparse
import dataclasses
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.experiments.ablation import ABLATIONS, Ablation, Variant, check_ablation
from lrnet.jobs.predict import PredictJob
from lrnet.jobs.val import ValJob
from lrnet.losses import resolve_box_loss
from lrnet.ops import NMS_METRICS
from lrnet.ops.similarity import registered_similarities, registered_similarity
from lrnet.schema import add_option_flags
from lrnet.training.similarity_setup import resolve_similarity_scales, training_box_sizes
from lrnet.training.train_config import TrainConfig, parse_overrides

REPO = Path(__file__).resolve().parents[2]


def record(width, height, boxes):
    return SimpleNamespace(width=width, height=height, boxes=np.asarray(boxes, np.float32).reshape(-1, 4))


def test_defaults_and_choices():
    cfg = TrainConfig()  # the assigner: the model's default (tests/training/test_model_assigner.py)
    assert (cfg.assign_metric, cfg.assign_outside, cfg.nms_metric, cfg.similarity_scale) == (
        "",
        None,
        "iou",
        0.0,
    )
    rule = {f.name: f.metadata["rule"] for f in dataclasses.fields(TrainConfig)}["assign_metric"]
    assert rule.allowed() == ("", *registered_similarities())
    assert parse_overrides(["assign-metric=nwd", "assign_outside=yes", "similarity_scale=8"]) == {
        "assign_metric": "nwd", "assign_outside": True, "similarity_scale": 8.0,
    }  # fmt: skip


def test_assign_metric_choices_follow_the_registry():
    """A similarity registered later is accepted and listed without editing TrainConfig."""

    def centre_distance(a, b, scale):
        return torch.exp(-((a - b)[..., :2].square().sum(-1)))

    with registered_similarity("centre_test", centre_distance, description="test only"):
        assert TrainConfig(assign_metric="centre_test").assign_metric == "centre_test"
        parser = argparse.ArgumentParser()
        add_option_flags(parser, TrainConfig)
        assert "centre_test" in " ".join(parser.format_help().split())
    with pytest.raises(ConfigError, match="assign_metric='centre_test'"):
        TrainConfig(assign_metric="centre_test")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"assign_metric": "giou"}, "assign_metric='giou'"),
        ({"nms_metric": "dotd"}, "nms_metric='dotd'"),
        ({"similarity_scale": -1.0}, "similarity_scale=-1.0"),
        ({"similarity_scale": float("nan")}, "similarity_scale=nan"),
        ({"assign_outside": "maybe"}, "assign_outside='maybe'"),
    ],
)
def test_bad_training_options(options, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**options)


def test_bad_validation_and_prediction_options():
    with pytest.raises(ConfigError, match="nms_metric='ciou'"):
        ValJob("w.pt", "d.yaml", nms_metric="ciou")
    with pytest.raises(ConfigError, match="nms_scale=-3"):
        ValJob("w.pt", "d.yaml", nms_metric="nwd", nms_scale=-3)
    with pytest.raises(ConfigError, match="nms_metric='x'"):
        PredictJob(["w.pt"], "img.jpg", nms_metric="x")
    assert PredictJob(["w.pt"], "img.jpg", nms_metric="nwd").nms_metric in NMS_METRICS


def test_constants_from_training_labels_at_training_scale(capsys):
    # 200 px wide image at imgsz 100: boxes shrink by 2 -> sizes (4, 4) and (2, 8)
    records = [
        record(200, 100, [[0, 0, 8, 8], [10, 10, 14, 26]]),
        record(50, 50, []),
        record(100, 100, [[0, 0, 0, 5]]),
    ]
    sizes = training_box_sizes(records, 100)
    torch.testing.assert_close(sizes, torch.tensor([[4.0, 4.0], [2.0, 8.0], [0.0, 5.0]], dtype=torch.float64))
    rsiou = resolve_box_loss("rsiou")
    assert resolve_similarity_scales("ciou", "iou", rsiou, 0.0, records, 100).assign is None  # nothing needed
    scales = resolve_similarity_scales("dotd", "nwd", resolve_box_loss("nwd"), 0.0, records, 100)
    assert scales.assign == pytest.approx(math.sqrt(16))  # DotD: sqrt(mean area) of the 2 valid boxes
    assert scales.box_loss == {"nwd": pytest.approx(4.0)}  # NWD: mean sqrt(w h), one per measure
    assert scales.nms == pytest.approx(4.0)
    assert "similarity constants from 3 training boxes" in capsys.readouterr().out
    given = resolve_similarity_scales("nwd", "iou", resolve_box_loss("nwd", c=2), 7.0, records, 100)
    assert (given.assign, given.box_loss, given.nms) == (7.0, None, None)  # c=2 given: not from data
    with pytest.raises(ConfigError, match="no box of positive size"):
        resolve_similarity_scales("nwd", "iou", rsiou, 0.0, [record(10, 10, [])], 100)


def test_ablation_variant_options_are_checked():
    table = ABLATIONS["similarity"]
    check_ablation(table)
    assert [v.model for v in table.variants].count("lrnet-n") == 4
    assert table.variants[1].describe_loss() == "`ciou`, assign_metric=nwd, assign_outside=True"
    bad = Ablation(
        "t",
        "x",
        (Variant("ok", "yolov8n", "ciou"), Variant("bad", "yolov8n", "ciou", (("assign_metric", "no"),))),
    )
    with pytest.raises(ConfigError, match=r"'bad'.*assign_metric='no'"):
        check_ablation(bad)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--assign-metric", "giou", "--device", "cpu"],
        ["train", "--box-loss", "rsiou+nwd:ratio=2", "--device", "cpu", "--epochs", "1"],
    ],
)
def test_cli_refuses_bad_values_in_one_line(argv, tmp_path):
    env = {"PYTHONPATH": str(REPO), "PATH": ""}
    cmd = [sys.executable, "-m", "lrnet.cli", *argv]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and ("giou" in lines[0] or "ratio=2" in lines[0]), out.stderr
