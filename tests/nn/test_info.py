import json

import torch
from torch import nn

from lrnet.cli import main
from lrnet.nn import build_model, shipped_model_names
from lrnet.nn.flops import count_gflops
from lrnet.nn.summary import layer_table, model_info


def test_count_gflops_of_one_conv_by_hand():
    conv = nn.Conv2d(3, 8, 3, 2, 1)
    # 8 x 16 x 16 outputs, each 3*3*3 multiply-adds, 2 FLOPs per multiply-add
    assert count_gflops(conv, 32) * 1e9 == 2 * 8 * 16 * 16 * 27
    assert conv.weight.device.type == "cpu"  # counted on a meta copy, model untouched


def test_model_info_yolov8n_reference_figures(shipped_model):
    info = model_info(shipped_model("yolov8n"), 640)
    assert info["params"] == 3_157_200 and info["params_fused"] == 3_151_904
    assert info["strides"] == [8, 16, 32]
    assert abs(info["gflops_fused"] - 8.7) / 8.7 < 0.03 and abs(info["gflops"] - 8.9) / 8.9 < 0.03
    info_p2 = model_info(shipped_model("yolov8n-p2"), 640)
    assert abs(info_p2["gflops_fused"] - 17.2) / 17.2 < 0.03 and abs(info_p2["gflops"] - 17.4) / 17.4 < 0.03


def test_layer_table_rows_sum_to_total():
    model = build_model("yolov8n", nc=2)
    rows = layer_table(model)
    assert len(rows) == 23 and rows[-1]["module"] == "Detect" and rows[-1]["from"] == [15, 18, 21]
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[2]["repeats"] == 1 and rows[4]["repeats"] == 2  # C2f x3 -> 1, x6 -> 2 at depth 0.33


def test_cli_info_json(capsys):
    assert main(["info", "yolov8n", "--json", "--imgsz", "320"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"params", "params_fused", "gflops", "gflops_fused", "strides"} <= set(data)
    assert data["params"] == 3_157_200 and data["strides"] == [8, 16, 32]
    assert abs(data["gflops"] * 4 - 8.744) < 0.01  # FLOPs scale with the pixel count


def test_cli_info_table_list_and_errors(capsys):
    assert main(["info", "--list"]) == 0
    assert capsys.readouterr().out.split() == shipped_model_names()
    assert main(["info", "lrnet-n", "--nc", "3", "--imgsz", "128"]) == 0
    text = capsys.readouterr().out
    assert "LFF" in text and "strides: [4, 8, 16, 32]" in text and "parameters:" in text
    assert main(["info", "nope-x"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["info", "yolov8n", "--imgsz", "100"]) == 2
    torch.manual_seed(0)


def test_cli_info_options_in_any_order_and_checked(capsys):
    """The `info` arguments come from `InfoOptions`: a bare `--json` before MODEL leaves MODEL alone,
    and `--nc`/`--imgsz` are checked by their fields' rules before any model is built."""
    assert main(["info", "--json", "yolov8n", "--imgsz", "320"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 3_157_200
    assert main(["info", "--list", "true"]) == 0
    assert capsys.readouterr().out.split() == shipped_model_names()
    for flag, value, allowed in (("--nc", "0", "[1, 100000]"), ("--imgsz", "-32", "[1, 32768]")):
        assert main(["info", "yolov8n", flag, value]) == 2
        err = capsys.readouterr().err
        assert err == f"lrnet info: error: {flag[2:]}={value} is out of range; use {allowed}\n"
    assert main(["info"]) == 2
    assert capsys.readouterr().err == (
        "lrnet info: error: info needs a model: a shipped name, a model YAML or a checkpoint (or list=True)\n"
    )
