"""The box loss a model trains with by default comes from its config's `box_loss:` key."""

from __future__ import annotations

from importlib import resources

import pytest

from lrnet.errors import ConfigError
from lrnet.losses import DetectionLoss, default_box_loss, resolve_box_loss
from lrnet.nn import build_model, load_model_config, shipped_model_names

FULL_RSIOU = resolve_box_loss("rsiou").options()


def shipped_yaml(file_name: str) -> str:
    return resources.files("lrnet.cfg").joinpath("models", file_name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", shipped_model_names())
def test_every_shipped_model_keeps_its_loss(name):
    # before configs named their loss, lrnet-* trained with full RSIoU and every yolov8* with CIoU
    want = ("rsiou", FULL_RSIOU) if name.startswith("lrnet") else ("ciou", {})
    assert load_model_config(name)["box_loss"] == want[0]  # the key survives into the resolved cfg
    assert default_box_loss(name) == want


@pytest.mark.parametrize("name", ["yolov8n", "yolov8n-p2", "lrnet-n"])
def test_detection_loss_of_a_built_model_uses_the_config(name):
    model = build_model(name, nc=2)
    loss = DetectionLoss.from_model(model)
    assert (loss.box_kind, loss.box_options) == default_box_loss(name)
    # an old config dict without the key (e.g. from a checkpoint) still maps to the shipped loss
    legacy = {k: v for k, v in model.cfg.items() if k != "box_loss"}
    assert default_box_loss(legacy) == default_box_loss(name)


def test_custom_yaml_names_its_loss_and_no_name_is_guessed(tmp_path):
    text = shipped_yaml("lrnet-n.yaml") + "scale: n\n"
    named = tmp_path / "mine.yaml"
    named.write_text(text.replace("box_loss: rsiou", "box_loss: rsiou:focal=none,alpha=1"))
    assert default_box_loss(str(named)) == ("rsiou", {**FULL_RSIOU, "focal": "none", "alpha": 1.0})
    model = build_model(str(named), nc=1)
    assert DetectionLoss.from_model(model).box_options["focal"] == "none"
    # without the key a custom config trains with CIoU, whatever its file is called
    unnamed = tmp_path / "lrnet-custom.yaml"
    unnamed.write_text("\n".join(line for line in text.splitlines() if not line.startswith("box_loss:")))
    assert default_box_loss(str(unnamed)) == ("ciou", {})
    assert default_box_loss({"name": "custom", "nc": 1}) == ("ciou", {})
    assert default_box_loss({"name": "custom", "box_loss": "siou*"}) == ("siou", {"direction_fix": True})


def test_bad_box_loss_in_a_config_names_the_file_and_the_spec(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(shipped_yaml("yolov8n.yaml").replace("box_loss: ciou", "box_loss: ciuo") + "scale: n\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: box_loss: box loss spec 'ciuo': unknown box loss"):
        default_box_loss(str(path))
