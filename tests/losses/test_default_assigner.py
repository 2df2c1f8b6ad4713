"""The assigner a model trains with by default comes from its config's `assign_metric:` and
`assign_outside:` keys, as its box loss comes from `box_loss:`."""

from __future__ import annotations

from importlib import resources

import pytest

from lrnet.errors import ConfigError
from lrnet.losses import DetectionLoss, default_assigner
from lrnet.nn import build_model, load_model_config, shipped_model_names
from lrnet.training.train_config import TrainConfig
from lrnet.training.trainer import Trainer, with_model_assigner


def custom_yaml(tmp_path, extra: str, name: str = "mine.yaml"):
    text = resources.files("lrnet.cfg").joinpath("models", "yolov8n.yaml").read_text(encoding="utf-8")
    path = tmp_path / name
    path.write_text(text + "scale: n\n" + extra)
    return path


@pytest.mark.parametrize("name", shipped_model_names())
def test_shipped_models_default_to_yolov8s_assigner(name):
    assert default_assigner(name) == ("ciou", False)


def test_a_yaml_names_its_assigner_and_the_key_survives_into_the_config(tmp_path):
    path = custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\n")
    assert default_assigner(str(path)) == ("nwd", True)
    cfg = load_model_config(str(path))
    assert (cfg["assign_metric"], cfg["assign_outside"]) == ("nwd", True)
    assert default_assigner(cfg) == ("nwd", True)  # the resolved dict a checkpoint stores
    assert default_assigner(str(custom_yaml(tmp_path, "assign_metric: dotd\n", "d.yaml"))) == ("dotd", False)
    assert default_assigner({"name": "custom", "nc": 1}) == ("ciou", False)


def test_bad_assigner_keys_name_the_file_and_the_key(tmp_path):
    bad = custom_yaml(tmp_path, "assign_metric: nwdd\n", "bad.yaml")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: assign_metric: 'nwdd' is not a registered similarity.*nwd"
    ):
        default_assigner(str(bad))
    odd = custom_yaml(tmp_path, "assign_outside: maybe\n", "odd.yaml")
    with pytest.raises(ConfigError, match=r"odd\.yaml: assign_outside: 'maybe' is not a boolean"):
        default_assigner(str(odd))
    with pytest.raises(ConfigError, match=r"odd\.yaml: assign_outside"):
        Trainer(TrainConfig(model=str(odd), data="unused.yaml"))  # refused before any run folder


def test_detection_loss_gets_the_resolved_assigner(tmp_path):
    path = str(custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\n"))
    cfg = with_model_assigner(TrainConfig(model=path))
    loss = DetectionLoss.from_model(
        build_model(path, nc=2), assign_metric=cfg.assign_metric, assign_outside=cfg.assign_outside
    )
    assert (loss.assigner.overlap, loss.assigner.outside) == ("nwd", True)
