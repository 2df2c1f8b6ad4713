"""The block registry and the generic parser: rules, repeats, validation and error messages."""

import pytest
import torch
import yaml
from torch import nn

from lrnet.errors import ConfigError
from lrnet.nn import (
    CHANNEL_RULES,
    C2f,
    Conv,
    LayerContext,
    build_model,
    get_block,
    load_model_config,
    register_block,
    registered_block,
    registered_blocks,
    shipped_model_names,
    unregister_block,
)

TINY_BACKBONE = [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]]]


def _tiny(head_rows, backbone=None):
    return {"name": "tiny", "nc": 2, "backbone": backbone or TINY_BACKBONE, "head": head_rows}


@pytest.mark.parametrize("name", shipped_model_names())
def test_every_shipped_row_is_built_from_its_registered_block(shipped_model, name):
    model = shipped_model(name)
    for spec, layer in zip(model.specs, model.layers):
        block = get_block(spec.module)
        assert spec.module in registered_blocks()
        built = layer[0] if isinstance(layer, nn.Sequential) and block.cls is not nn.Sequential else layer
        assert type(built) is block.cls


def test_channel_rules():
    ctx = LayerContext(in_channels=[24, 40], width=0.25, max_channels=1024, nc=7, reg_max=16)
    assert CHANNEL_RULES["scaled_arg0"]([512, 3, 2], ctx) == ([24, 128, 3, 2], 128)
    assert CHANNEL_RULES["scaled_arg0"]([2048, 3], ctx) == ([24, 256, 3], 256)  # capped at max_channels
    assert CHANNEL_RULES["scaled_arg0"]([100], ctx) == ([24, 32], 32)  # 25 -> next multiple of 8
    assert CHANNEL_RULES["same_as_input"]([2, "nearest"], ctx) == ([2, "nearest"], 24)
    assert CHANNEL_RULES["sum_of_inputs"]([1], ctx) == ([1], 64)
    assert CHANNEL_RULES["four_times_input"]([], ctx) == ([], 96)
    assert CHANNEL_RULES["head"]([3], ctx) == ([3, [24, 40], 16], 0)
    assert CHANNEL_RULES["head"]([], ctx) == ([7, [24, 40], 16], 0)


def test_repeats_arg_goes_into_n_and_stack_builds_copies():
    cfg = _tiny(
        [[-1, 3, "C2f", [32, True]], [-1, 2, "Conv", [32, 3, 1]], [[-1], 1, "Detect", ["nc"]]],
        backbone=[[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]]],
    )
    model = build_model(cfg)
    c2f, stacked = model.layers[2], model.layers[3]
    assert isinstance(c2f, C2f) and len(c2f.m) == 3 and model.specs[2].args == [32, 32, 3, True]
    assert isinstance(stacked, nn.Sequential) and [type(m) for m in stacked] == [Conv, Conv]


def test_stacked_block_must_keep_its_channels():
    cfg = _tiny([[-1, 2, "Conv", [64, 3, 1]], [[-1], 1, "Detect", ["nc"]]])
    with pytest.raises(ConfigError, match=r"layer 2: Conv is stacked 2 times but maps \[32\] -> 64"):
        build_model(cfg)


def test_unknown_module_names_the_file_and_row_and_lists_the_blocks(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_tiny([[-1, 1, "Foo", [8]], [[-1], 1, "Detect", ["nc"]]])))
    with pytest.raises(ConfigError, match=r"unknown module 'Foo'") as info:
        build_model(path)
    message = str(info.value)
    assert str(path) in message and "layer 2" in message
    assert all(name in message for name in registered_blocks())
    assert "--" not in message  # library errors never name a CLI flag


def test_head_position_is_checked():
    with pytest.raises(ConfigError, match="Detect must be the last layer"):
        load_model_config(_tiny([[[-1], 1, "Detect", ["nc"]], [-1, 1, "Conv", [8, 3, 1]]]))
    with pytest.raises(ConfigError, match="last layer must be Detect"):
        load_model_config(_tiny([[-1, 1, "Conv", [8, 3, 1]]]))
    with pytest.raises(ConfigError, match="invalid input index 5"):
        load_model_config(_tiny([[[-1, 5], 1, "Detect", ["nc"]]]))
    with pytest.raises(ConfigError, match="repeats must be a positive integer"):
        load_model_config(_tiny([[-1, 0, "Conv", [8, 3, 1]], [[-1], 1, "Detect", ["nc"]]]))


def test_registration_is_validated_and_reversible():
    class Plain(nn.Module):
        def __init__(self, c1: int, c2: int, k: int = 1) -> None:
            super().__init__()

    with pytest.raises(ConfigError, match="unknown channel rule 'wide'"):
        register_block("Plain", channels="wide")(Plain)
    with pytest.raises(ConfigError, match="repeats='many'"):
        register_block("Plain", channels="same_as_input", repeats="many")(Plain)
    with pytest.raises(ConfigError, match=r"third constructor parameter `n`.*Plain\(c1, c2, k"):
        register_block("Plain", channels="scaled_arg0", repeats="arg")(Plain)
    assert "Plain" not in registered_blocks()  # failed registrations leave nothing behind
    with pytest.raises(ConfigError, match=r"'Conv' is already registered by lrnet\.nn\.conv\.Conv"):
        register_block("Conv", channels="scaled_arg0")(Plain)
    assert get_block("Conv").cls is Conv

    register_block(channels="scaled_arg0")(Plain)  # the name defaults to the class name
    try:
        assert get_block("Plain").cls is Plain and "Plain" in registered_blocks()
    finally:
        assert unregister_block("Plain").cls is Plain
    assert "Plain" not in registered_blocks()
    with pytest.raises(ConfigError, match="unknown module 'Plain'"):
        unregister_block("Plain")

    temporary = registered_block(Plain, "Tmp", channels="same_as_input")
    with pytest.raises(RuntimeError, match="boom"), temporary as spec:
        assert spec.name == "Tmp" and get_block("Tmp").cls is Plain
        raise RuntimeError("boom")
    assert "Tmp" not in registered_blocks()  # removed on exit, even after an exception
    clash = registered_block(Plain, "Conv", channels="same_as_input")
    with pytest.raises(ConfigError, match="'Conv' is already registered"), clash:
        pass
    assert get_block("Conv").cls is Conv


def test_library_errors_are_config_errors(shipped_model):
    with pytest.raises(ConfigError, match="unknown model 'yolov9x'"):
        build_model("yolov9x")
    with pytest.raises(ConfigError, match=r"330x330.*320 or 352"):
        shipped_model("yolov8n").eval()(torch.zeros(1, 3, 330, 330))
