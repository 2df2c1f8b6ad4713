"""The rules every engine job shares: run folders, devices, input sizes, option parsing, error classes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lrnet import errors
from lrnet.eval import METRIC_NAMES
from lrnet.experiments.ablation import (
    ABLATIONS,
    REPORT_METRICS,
    Ablation,
    Variant,
    check_ablation,
    parse_seeds,
)
from lrnet.experiments.demo import DemoConfig
from lrnet.jobs.predict import PredictJob
from lrnet.jobs.val import ValJob
from lrnet.runtime.device import select_device
from lrnet.runtime.imgsz import check_imgsz
from lrnet.runtime.onnx_backend import OnnxModelError
from lrnet.runtime.run_dir import next_run_dir
from lrnet.runtime.sources import iter_source_files
from lrnet.training.train_config import TrainConfig, parse_option, parse_overrides
from lrnet.weights import checkpoint


def test_next_run_dir_numbers_and_creates(tmp_path):
    first = next_run_dir(tmp_path, "exp")
    assert first == tmp_path / "exp" and first.is_dir()
    assert next_run_dir(tmp_path, "exp") == tmp_path / "exp2"
    assert next_run_dir(tmp_path, "exp") == tmp_path / "exp3"
    assert next_run_dir(tmp_path, "exp", exist_ok=True) == tmp_path / "exp"
    planned = next_run_dir(tmp_path, "exp", mkdir=False)
    assert planned == tmp_path / "exp4" and not planned.exists()


def test_next_run_dir_unwritable_is_a_run_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(errors.RunError, match="cannot create the run folder"):
        next_run_dir(blocker, "exp")


def test_select_device(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:0", "0"):
        with pytest.raises(errors.DeviceError, match="CUDA is not available") as info:
            select_device(name)
        assert "--" not in str(info.value)
    with pytest.raises(errors.ConfigError, match="'tpu'"):
        select_device("tpu")
    with pytest.raises(errors.ConfigError, match="cuda:x"):
        select_device("cuda:x")


def test_check_imgsz_names_the_nearest_sizes():
    assert check_imgsz(640, 32) == 640
    with pytest.raises(errors.ConfigError, match=r"imgsz=100 .* use 96 or 128"):
        check_imgsz(100, 32)
    with pytest.raises(errors.ConfigError, match=r"imgsz=0 .* use 32"):
        check_imgsz(0, 32)


def test_train_config_has_no_catch_all_field_and_refuses_unknown_keys():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert "extra" not in names
    with pytest.raises(errors.ConfigError, match="extra"):
        TrainConfig.from_dict({"extra": {"anything": 1}})


def test_bools_go_through_the_one_parser(tmp_path):
    assert parse_option("ema", "off") is False and parse_option("amp", "Yes") is True
    with pytest.raises(errors.ConfigError, match="ema='ture'"):
        parse_option("ema", "ture")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("ema: 'no'\nplots: 'on'\n")  # quoted: YAML leaves them strings
    cfg = TrainConfig.from_yaml(cfg_file)
    assert cfg.ema is False and cfg.plots is True
    cfg_file.write_text("ema: nope\n")
    with pytest.raises(errors.ConfigError, match="ema='nope'"):
        TrainConfig.from_yaml(cfg_file)


def test_parse_overrides_types_and_errors():
    got = parse_overrides(["synthetic-train=300", "lr0=0.02", "deterministic=false", "model=yolov8n"])
    assert got == {"synthetic_train": 300, "lr0": 0.02, "deterministic": False, "model": "yolov8n"}
    with pytest.raises(errors.ConfigError, match="KEY=VALUE"):
        parse_overrides(["epochs"])
    with pytest.raises(errors.ConfigError, match="epochz"):
        parse_overrides(["epochz=3"])
    with pytest.raises(errors.ConfigError, match="epochs='three'"):
        parse_overrides(["epochs=three"])


def test_max_det_rule_is_shared():
    assert TrainConfig().val_max_det == ValJob("w.pt", "d.yaml").val_max_det == 1500
    assert ValJob("w.pt", "d.yaml", protocol="coco").val_max_det == 300
    assert ValJob("w.pt", "d.yaml", max_det=7).val_max_det == 7
    with pytest.raises(errors.ConfigError, match="protocol"):
        TrainConfig(protocol="voc")


def test_ablation_tables_use_the_metric_list_and_the_box_loss_registry():
    assert set(REPORT_METRICS) <= set(METRIC_NAMES)
    for table in ABLATIONS.values():
        check_ablation(table)
    bad = Ablation(
        "t", "Table 0", (Variant("ok", "yolov8n", "ciou"), Variant("typo", "yolov8n", "rsiou:focl=1"))
    )
    with pytest.raises(errors.ConfigError, match="'typo'"):
        check_ablation(bad)
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    with pytest.raises(errors.ConfigError):
        parse_seeds("a")
    with pytest.raises(errors.ConfigError):
        parse_seeds(",")


def test_jobs_refuse_bad_values_before_any_work():
    with pytest.raises(errors.ConfigError, match="imgsz=100"):
        DemoConfig(imgsz=100)
    with pytest.raises(errors.ConfigError, match="epochs=0"):
        DemoConfig(epochs=0)
    with pytest.raises(errors.ConfigError, match="large_image"):
        DemoConfig(imgsz=256, large_image=128)
    with pytest.raises(errors.ConfigError, match="one title per weights"):
        PredictJob(weights=["a.pt", "b.pt"], source="x", titles=["a"])
    with pytest.raises(errors.ConfigError):
        PredictJob(weights=[], source="x")
    with pytest.raises(errors.ConfigError, match="batch=0"):
        ValJob("w.pt", "d.yaml", batch=0)


def test_source_errors_name_the_value_not_a_flag(tmp_path):
    with pytest.raises(errors.InputFileNotFoundError, match="no such file") as info:
        iter_source_files(tmp_path / "missing")
    assert "--" not in str(info.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(errors.InputFileNotFoundError, match="no images"):
        iter_source_files(tmp_path)


def test_error_classes_are_the_shared_family():
    assert checkpoint.CheckpointError is errors.CheckpointError
    assert issubclass(OnnxModelError, errors.ExportError)
    with pytest.raises(errors.CheckpointError, match="no such checkpoint"):
        checkpoint.load_checkpoint("missing.pt")
