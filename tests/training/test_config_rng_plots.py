"""TrainConfig parsing (flags, YAML, errors), RNG snapshots, the results plot and checkpoint round trip."""

import argparse
import random

import numpy as np
import pytest
import torch

from lrnet.errors import ConfigError
from lrnet.schema import add_option_flags
from lrnet.training.plots import plot_results, plotted_columns
from lrnet.training.rng import get_rng_state, set_rng_state
from lrnet.training.train_config import TrainConfig, config_from_args
from lrnet.weights.checkpoint import load_checkpoint, save_checkpoint


def _parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg")
    add_option_flags(parser, TrainConfig)
    return config_from_args(parser.parse_args(argv))


def test_defaults_follow_spec():
    c = TrainConfig()
    assert (c.lr0, c.lrf, c.momentum, c.weight_decay) == (0.01, 0.01, 0.937, 5e-4)
    assert (c.warmup_epochs, c.warmup_momentum, c.warmup_bias_lr, c.nbs) == (3.0, 0.8, 0.1, 64)
    assert (c.ema_decay, c.ema_tau, c.close_mosaic, c.max_grad_norm) == (0.9999, 0.0, 10, 10.0)  # tau: auto
    assert c.val_max_det == 1500 and TrainConfig(protocol="coco").val_max_det == 300


def test_flags_yaml_and_precedence(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: 7\nlr0: 0.02\nmodel: yolov8n\n")
    c = _parse(["--cfg", str(cfg_file), "--lr0", "0.05", "--amp", "false", "--sync-bn"])
    assert (c.epochs, c.lr0, c.model, c.amp, c.sync_bn) == (7, 0.05, "yolov8n", False, True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*epochz"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainConfig(imgsz=100)


def test_yaml_booleans_go_through_parse_bool(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("ema: no\nplots: 'no'\namp: 'off'\nsync_bn: 'yes'\n")  # YAML's bool, then text
    c = TrainConfig.from_yaml(cfg_file)
    assert (c.ema, c.plots, c.amp, c.sync_bn) == (False, False, False, True)
    assert _parse(["--cfg", str(cfg_file), "--ema"]).ema is True  # the flag wins over the file
    cfg_file.write_text("ema: maybe\n")
    with pytest.raises(ConfigError, match="ema='maybe' is not a boolean"):
        TrainConfig.from_yaml(cfg_file)
    with pytest.raises(ConfigError, match="ema='maybe'"):
        TrainConfig(ema="maybe")


def test_rng_state_roundtrip_through_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    state = get_rng_state()
    expected = (random.random(), np.random.rand(), np.random.normal(), torch.rand(3))
    path = save_checkpoint(tmp_path / "w" / "last.pt", {"model_cfg": {}, "model": {}, "rng": state})
    loaded = load_checkpoint(path)
    set_rng_state(loaded["rng"])
    got = (random.random(), np.random.rand(), np.random.normal(), torch.rand(3))
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])


def test_plot_results_writes_png(tmp_path):
    csv_path = tmp_path / "results.csv"
    csv_path.write_text("epoch,train/box_loss,metrics/AP50,time\n1,2.0,0.1,3\n2,1.5,0.3,3\n")
    png = plot_results(csv_path)
    assert png is not None and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_skips_metrics_without_ground_truth():
    header = ["epoch", "metrics/AP", "metrics/APl", "metrics/APvt", "time"]
    data = [[1, 0.1, -1.0, -1.0, 3], [2, 0.2, -1.0, 0.05, 3]]
    assert plotted_columns(header, data) == [1, 3]
