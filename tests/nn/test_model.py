import copy

import pytest
import torch
import yaml

from lrnet.nn import LFF, Conv, DetectionModel, build_model, load_model_config, shipped_model_names

TOPOLOGY_STRIDES = {
    "yolov8": [8, 16, 32],
    "yolov8-p2": [4, 8, 16, 32],
    "yolov8-lff": [8, 16, 32],
    "lrnet": [4, 8, 16, 32],
}


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "name,unfused,fused", [("yolov8n", 3_157_200, 3_151_904), ("yolov8n-p2", 3_354_144, 3_348_240)]
)
def test_reference_parameter_counts(shipped_model, name, unfused, fused):
    model = shipped_model(name)
    assert model.nc == 80 and _n_params(model) == unfused
    assert _n_params(copy.deepcopy(model).fuse()) == fused


def test_s_and_m_scales_match_public_yolov8_counts(shipped_model):
    assert _n_params(shipped_model("yolov8s")) == 11_166_560
    assert _n_params(shipped_model("yolov8m")) == 25_902_640


@pytest.mark.parametrize(
    "name,topology",
    [("yolov8n", "yolov8"), ("yolov8s-p2", "yolov8-p2"), ("yolov8m-lff", "yolov8-lff"), ("lrnet-n", "lrnet")],
)
def test_strides_are_derived_per_topology(shipped_model, name, topology):
    model = shipped_model(name)
    assert model.stride.tolist() == TOPOLOGY_STRIDES[topology]
    assert model.stride.dtype == torch.float32


def test_lrnet_has_lff_at_backbone_downsamplings(shipped_model):
    model = shipped_model("lrnet-n")
    lff_indices = [i for i, layer in enumerate(model.layers) if isinstance(layer, LFF)]
    assert lff_indices == [1, 3, 5, 7]
    assert isinstance(model.layers[0], Conv) and model.layers[0].conv.stride == (2, 2)
    # the bottom-up neck keeps strided convolutions
    assert [i for i, layer in enumerate(model.layers) if isinstance(layer, Conv)] == [0, 19, 22, 25]
    assert _n_params(model) > _n_params(shipped_model("yolov8n-p2"))
    assert [i for i, layer in enumerate(shipped_model("yolov8n-lff").layers) if isinstance(layer, LFF)] == [
        1,
        3,
        5,
        7,
    ]


def test_shapes_at_320x416_train_and_eval(shipped_model):
    model = shipped_model("lrnet-n")
    x = torch.zeros(1, 3, 320, 416)
    model.train()
    with torch.no_grad():
        maps = model(x)
    assert [tuple(m.shape) for m in maps] == [(1, 144, 320 // s, 416 // s) for s in (4, 8, 16, 32)]
    model.eval()
    with torch.no_grad():
        out = model(x)
    n_anchors = sum((320 // s) * (416 // s) for s in (4, 8, 16, 32))
    assert out.shape == (1, n_anchors, 84)
    assert torch.all((out[..., 4:] >= 0) & (out[..., 4:] <= 1))
    assert torch.all(out[..., 2] >= out[..., 0]) and torch.all(out[..., 3] >= out[..., 1])


def test_invalid_input_size_raises_clear_error(shipped_model):
    model = shipped_model("yolov8n").eval()
    with pytest.raises(ValueError, match=r"330x330.*stride 32.*320 or 352"):
        model(torch.zeros(1, 3, 330, 330))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.zeros(1, 1, 64, 64))


@pytest.mark.parametrize("name", shipped_model_names())
def test_every_shipped_config_builds_and_runs(shipped_model, name):
    torch.manual_seed(0)
    model = shipped_model(name)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    maps = model(x)
    assert len(maps) == len(model.stride)
    assert all(m.shape == (2, 64 + 80, 64 // int(s), 64 // int(s)) for m, s in zip(maps, model.stride))
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, sum((64 // int(s)) ** 2 for s in model.stride), 84)
    assert torch.isfinite(out).all()


def test_cfg_dict_rebuilds_identical_model_and_yaml_path(tmp_path):
    torch.manual_seed(0)
    model = build_model("yolov8n-lff", nc=3)
    assert model.cfg["scale"] == "n" and model.cfg["nc"] == 3 and model.nc == 3
    twin = build_model(yaml.safe_load(yaml.safe_dump(model.cfg)))  # survives a YAML round trip
    twin.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    model.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(model(x), twin(x))
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump({**model.cfg, "scale": "s", "name": "mine"}))
    assert build_model(path).cfg["scale"] == "s"


def test_names_and_errors(tmp_path):
    model = build_model("yolov8n", names=["car", "person"])
    assert model.nc == 2 and model.names == ["car", "person"] and isinstance(model, DetectionModel)
    with pytest.raises(ValueError, match="yolov8n, yolov8s"):
        build_model("yolov9x")
    with pytest.raises(ValueError, match="not found"):
        build_model(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nc: 2\nbackbone: [[-1, 1, Foo, [8]]]\nhead: []\n")
    with pytest.raises(ValueError, match="unknown module 'Foo'"):
        build_model(bad)


def test_top_level_box_loss_key_survives_loading_and_rebuilding(tmp_path):
    cfg = load_model_config("yolov8n")
    path = tmp_path / "mine-n.yaml"
    path.write_text(yaml.safe_dump({**cfg, "box_loss": "rsiou", "name": "mine-n"}))
    resolved = load_model_config(path, nc=2)
    assert resolved["box_loss"] == "rsiou" and resolved["nc"] == 2
    model = build_model(path, nc=2)
    assert model.cfg["box_loss"] == "rsiou"
    assert build_model(yaml.safe_load(yaml.safe_dump(model.cfg))).cfg["box_loss"] == "rsiou"
