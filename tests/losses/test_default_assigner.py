"""The assigner a model trains with by default comes from its config's `assign_metric:`,
`assign_outside:` and `assign_min_side:` keys, as its box loss comes from `box_loss:`."""

from __future__ import annotations

import re
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


# What each shipped model names: a model without P2 enlarges gts under its second-finest stride (16)
# for the candidate test (experiments/REAL.md: +2.4 AP on HIT-UAV val); P2 models keep YOLOv8's rule.
SHIPPED_MIN_SIDE = {"yolov8": 16.0, "yolov8-p2": 0.0, "yolov8-lff": 16.0, "lrnet": 0.0}


def family(name: str) -> str:
    """A shipped model's name without its scale letter: yolov8s-p2 -> yolov8-p2, lrnet-m -> lrnet."""
    return re.sub(r"^(yolov8|lrnet)-?[nsm]", r"\1", name)


@pytest.mark.parametrize("name", shipped_model_names())
def test_shipped_models_default_to_yolov8s_assigner_metric(name):
    assert default_assigner(name) == ("ciou", False, SHIPPED_MIN_SIDE[family(name)])


def test_min_side_is_the_second_finest_stride_of_a_model_without_p2():
    """The shipped YAMLs follow one rule, checked against the built models' strides: a model whose
    finest stride is 8 names its second-finest stride; a model with P2 (finest stride 4) names none."""
    for name in shipped_model_names():
        strides = sorted(int(s) for s in build_model(name, nc=1).stride.tolist())
        expected = float(strides[1]) if strides[0] == 8 else 0.0
        assert default_assigner(name)[2] == expected, (name, strides)


def test_a_yaml_names_its_assigner_and_the_key_survives_into_the_config(tmp_path):
    path = custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\nassign_min_side: 8\n")
    assert default_assigner(str(path)) == ("nwd", True, 8.0)
    cfg = load_model_config(str(path))
    assert (cfg["assign_metric"], cfg["assign_outside"], cfg["assign_min_side"]) == ("nwd", True, 8)
    assert default_assigner(cfg) == ("nwd", True, 8.0)  # the resolved dict a checkpoint stores
    dotd = custom_yaml(tmp_path, "assign_metric: dotd\n", "d.yaml")  # yolov8n's min side stays
    assert default_assigner(str(dotd)) == ("dotd", False, 16.0)
    assert default_assigner(str(custom_yaml(tmp_path, "assign_min_side: 0\n", "z.yaml")))[2] == 0.0
    assert default_assigner({"name": "custom", "nc": 1}) == ("ciou", False, 0.0)


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


@pytest.mark.parametrize("value", ["-1", "big", "true", ".nan", ".inf", "[16]"])
def test_a_hostile_min_side_names_the_file_and_the_key(tmp_path, value):
    bad = custom_yaml(tmp_path, f"assign_min_side: {value}\n", "side.yaml")
    with pytest.raises(ConfigError, match=r"side\.yaml: assign_min_side: .* is not a number of pixels >= 0"):
        default_assigner(str(bad))
    with pytest.raises(ConfigError, match=r"side\.yaml: assign_min_side"):
        Trainer(TrainConfig(model=str(bad), data="unused.yaml", project=str(tmp_path / "runs")))
    assert not (tmp_path / "runs").exists()


def test_detection_loss_gets_the_resolved_assigner(tmp_path):
    path = str(custom_yaml(tmp_path, "assign_metric: nwd\nassign_outside: true\n"))
    cfg = with_model_assigner(TrainConfig(model=path))
    loss = DetectionLoss.from_model(
        build_model(path, nc=2), assign_metric=cfg.assign_metric, assign_outside=cfg.assign_outside,
        assign_min_side=cfg.assign_min_side,
    )  # fmt: skip
    assert (loss.assigner.overlap, loss.assigner.outside, loss.assigner.min_side) == ("nwd", True, 16.0)
