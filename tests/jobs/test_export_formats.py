"""Export to ONNX / OpenVINO / TorchScript in fp32, fp16, int8: parity with PyTorch, metadata,
val/predict through the backend registry, and hostile inputs (bad options, foreign or broken files)."""

import argparse
import importlib.util
import logging

import pytest
import torch

from lrnet.cli import main
from lrnet.errors import ConfigError, ExportError
from lrnet.jobs.export import (
    FORMAT_SUFFIXES,
    ExportJob,
    float_convolutions,
    letterboxed_images,
    match_detections,
    run_export,
)
from lrnet.nn import build_model
from lrnet.ops import postprocess
from lrnet.ops.boxes import box_iou
from lrnet.runtime.backends import backend_for, load_exported, registered_suffixes
from lrnet.runtime.predictor import load_inference_model
from lrnet.schema import add_option_flags, options_from_args
from lrnet.weights.checkpoint import save_checkpoint
from tests.fixtures.predict_fixtures import make_yolo_dataset

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(
    not HAS_OPENVINO, reason="openvino not installed (pip install 'lrnet[openvino]')"
)
IMGSZ = 64


def hot_checkpoint(path):
    """A random yolov8n with BatchNorm statistics of real activations (a fresh model's unit running
    variances shrink every activation to ~0 in eval mode) and class convolutions re-drawn, so that it
    scores anchors widely (distinct scores, many above conf 0.25) like a trained model."""
    torch.manual_seed(0)
    model = build_model("yolov8n", nc=3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration passes
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(4, 3, IMGSZ, IMGSZ))
        for i, conv in enumerate(model.detect.cls):
            conv[-1].weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(i))
            conv[-1].bias.zero_()
    ckpt = {"model_cfg": model.cfg, "names": ["c0", "c1", "c2"], "model": model.state_dict()}
    return save_checkpoint(path, {**ckpt, "train_args": {"imgsz": IMGSZ}})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs through the root logger
    root = tmp_path_factory.mktemp("formats")
    ckpt = hot_checkpoint(root / "hot.pt")
    data = make_yolo_dataset(root / "data", nc=3, n=4, size=96)
    model = load_inference_model(ckpt)[0]
    return root, ckpt, data, model


def test_match_detections_hand_worked():
    ref = [torch.tensor([[0.0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 1], [0, 0, 5, 5, 0.1, 0]])]
    # first: IoU 90/100 = 0.9 same class -> match; second: right box, wrong class -> no match;
    # third: below conf 0.25 -> not counted
    got = [torch.tensor([[0.0, 0, 10, 9, 0.5, 0], [20, 20, 30, 30, 0.8, 0]])]
    m = match_detections(ref, got)
    assert (m.matched, m.total) == (1, 2) and m.share == 0.5
    assert m.mean_iou == pytest.approx((0.9 + 0.0) / 2)
    assert match_detections([torch.zeros(0, 6)], [torch.zeros(0, 6)]).share == 1.0


def formats():
    yield "onnx"
    yield "torchscript"
    yield pytest.param("openvino", marks=needs_openvino)


@pytest.mark.parametrize("fmt", list(formats()))
def test_fp32_formats_match_pytorch_and_carry_metadata(setup, fmt):
    root, ckpt, _, model = setup
    result = run_export(
        ExportJob(str(ckpt), format=fmt, imgsz=IMGSZ, out=str(root / f"m32{FORMAT_SUFFIXES[fmt]}"))
    )
    assert result.ok and result.max_rel_diff <= 1e-3
    exported, names, imgsz = load_inference_model(result.path, trust_code=True)  # lrnet's own export
    assert names == ["c0", "c1", "c2"] and imgsz == IMGSZ and exported.nc == 3
    assert exported.stride.tolist() == model.stride.tolist()
    x = torch.rand(3, 3, IMGSZ, IMGSZ)  # batch 3 through a batch-1 export
    with torch.inference_mode():
        ref, got = model(x), exported(x)
    # raw boxes to 1e-3 relative (must-show); after NMS (ties between equal scores may resolve
    # differently) PyTorch's detections are found again at IoU >= 0.99
    torch.testing.assert_close(got[..., :4], ref[..., :4], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(got[..., 4:], ref[..., 4:], rtol=0, atol=1e-3)
    d_ref, d_got = postprocess(ref, conf=0.25), postprocess(got, conf=0.2)
    m = match_detections(d_ref, d_got, iou=0.99)
    assert m.total > 10 and m.share >= 0.95
    with pytest.raises(ExportError, match=f"exported for input {IMGSZ}x{IMGSZ}"):
        exported(torch.rand(1, 3, 96, 96))


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("openvino", marks=needs_openvino)])
def test_fp16_and_int8_detections_match_pytorch(setup, fmt):
    """fp16 and int8 detections stay close to PyTorch's. This random model's features are far more
    fragile than a trained model's (near-equal scores reorder under rounding), so the thresholds here
    are looser than the export check's 95% at IoU >= 0.9, which docs/DEPLOY.md reports for a trained
    model."""
    _, ckpt, data, model = setup
    images = letterboxed_images(str(data), "val", IMGSZ, 4)
    sizes = {"fp32": run_export(ExportJob(str(ckpt), format=fmt, imgsz=IMGSZ)).size_bytes}
    for kw in ({"half": True}, {"int8": True, "data": str(data), "calib_images": 4}):
        result = run_export(ExportJob(str(ckpt), format=fmt, imgsz=IMGSZ, **kw))
        sizes[result.precision] = result.size_bytes
        assert result.path.name == f"hot-{result.precision}{FORMAT_SUFFIXES[fmt]}"
        exported = load_exported(result.path)
        assert exported.precision == result.precision
        # independent recount: matched-box IoU >= 0.9 with the class, on the data's val images
        with torch.inference_mode():
            ref = [postprocess(model(x), conf=0.25)[0] for x in images]
            got = [postprocess(exported(x), conf=0.001)[0] for x in images]
        ious = []
        for r, g in zip(ref, got):
            iou = box_iou(r[:, :4], g[:, :4]) * (r[:, 5:6] == g[:, 5][None])
            ious += iou.max(1).values.tolist()
        assert len(ious) > 10, "the hot model must give detections to compare"
        share = sum(i >= 0.9 for i in ious) / len(ious)
        if result.precision == "fp16":
            assert result.detections.total > 10 and result.detections.mean_iou >= 0.9
            assert share >= 0.85, share
        else:
            assert result.detections.total > 10 and result.detections.mean_iou >= 0.8
            assert sum(ious) / len(ious) >= 0.8
    assert sizes["int8"] < 0.4 * sizes["fp32"] and sizes["fp16"] < 0.6 * sizes["fp32"]


def test_int8_keeps_the_first_and_the_head_output_convolutions_float(setup, tmp_path):
    """yolov8n: the stem convolution and, per level (3), the box and class output convolutions
    stay float (7 of 63); every other convolution reads int8 weights through a DequantizeLinear."""
    import onnx

    _, ckpt, data, _ = setup
    out = tmp_path / "q.onnx"
    run_export(ExportJob(str(ckpt), out=str(out), imgsz=IMGSZ, int8=True, data=str(data), calib_images=4))
    graph = onnx.load(str(out)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    float_names = {n.name for n in convs if producer.get(n.input[1]) != "DequantizeLinear"}
    head_outputs = {f"/{b}.{i}/{b}.{i}.2/Conv" for b in ("box", "cls") for i in range(3)}
    expected = {"/layers.0/conv/Conv", *head_outputs}
    assert len(convs) == 63 and float_names == expected  # backbone 27, neck 18, head 3 x 6
    # the rule itself, on the float graph: the same names
    base = tmp_path / "base.onnx"
    run_export(ExportJob(str(ckpt), out=str(base), imgsz=IMGSZ))
    assert set(float_convolutions(onnx.load(str(base)).graph)) == expected


@needs_openvino
def test_val_and_predict_run_an_openvino_model(setup, tmp_path, capsys):
    _, ckpt, data, _ = setup
    assert (
        main(["export", "--weights", str(ckpt), "--format", "openvino", "--out", str(tmp_path / "m.xml")])
        == 0
    )
    assert "check: OK" in capsys.readouterr().out
    args = [
        "--weights",
        str(tmp_path / "m.xml"),
        "--data",
        str(data),
        "--project",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    assert main(["val", *args]) == 0
    source = str(data.parent / "images" / "val")
    xml = str(tmp_path / "m.xml")
    assert (
        main(["predict", "--weights", xml, "--source", source, "--project", str(tmp_path), "--device", "cpu"])
        == 0
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "tflite"}, "format='tflite' is not allowed"),
        ({"half": True, "int8": True}, "choose one precision"),
        ({"int8": True}, "needs data"),
        ({"format": "torchscript", "half": True}, "use format='onnx' or 'openvino'"),
        ({"int8": True, "data": "x", "dynamic": True}, "drop dynamic"),
        ({"imgsz": 100}, "imgsz=100"),
        ({"calib_images": 0}, "calib_images=0"),
        ({"format": "openvino", "out": "m.onnx"}, r"name it \*\.xml"),
    ],
)
def test_bad_export_options_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ExportJob("w.pt", **kwargs)


def test_cli_bad_format_is_one_line(tmp_path, capsys):
    assert main(["export", "--weights", str(tmp_path / "w.pt"), "--format", "tflite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lrnet export: error: format='tflite'") and "\n" not in err


def test_export_flags_are_the_job_fields(capsys):
    parser = argparse.ArgumentParser()
    add_option_flags(parser, ExportJob)
    argv = ["--weights", "w.pt", "--dynamic", "--imgsz", "320", "--check-images", "3", "--half", "no"]
    got = options_from_args(ExportJob, parser.parse_args(argv))
    assert got == ExportJob("w.pt", dynamic=True, imgsz=320, check_images=3, half=False)
    assert options_from_args(ExportJob, parser.parse_args(["--weights", "w.pt"])) == ExportJob("w.pt")
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --weights is required
    assert "--weights" in capsys.readouterr().err


def test_export_refuses_to_overwrite_its_weights(setup, tmp_path):
    _, ckpt, _, _ = setup
    with pytest.raises(ExportError, match="would destroy the input"):  # refused before the suffix check
        ExportJob(str(ckpt), out=str(ckpt))
    with pytest.raises(ConfigError, match=r"name it \*\.onnx"):  # another path with the wrong suffix
        ExportJob(str(ckpt), out=str(tmp_path / "w.pt"))
    odd = tmp_path / "w.onnx"  # a checkpoint named like the export it would write
    odd.write_bytes(ckpt.read_bytes())
    with pytest.raises(ExportError, match="would destroy the input"):
        run_export(ExportJob(str(odd)))  # the derived output path is the weights themselves
    assert odd.read_bytes() == ckpt.read_bytes()


def test_foreign_and_broken_exported_files_are_refused(tmp_path):
    assert {".onnx", ".xml", ".torchscript"} <= set(registered_suffixes())
    assert backend_for(tmp_path / "a.pt") is None
    with pytest.raises(ExportError, match="not an exported lrnet model"):
        load_exported(tmp_path / "a.tflite")
    bad = tmp_path / "bad.torchscript"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="not a loadable TorchScript"):
        load_exported(bad, trust_code=True)
    # a TorchScript module without lrnet metadata
    plain = tmp_path / "plain.torchscript"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(plain))
    with pytest.raises(ExportError, match="missing or broken lrnet metadata"):
        load_exported(plain, trust_code=True)
    with pytest.raises(ExportError, match="no such exported model"):
        load_exported(tmp_path / "missing.torchscript")


@needs_openvino
def test_broken_openvino_files_are_refused(tmp_path):
    xml = tmp_path / "m.xml"
    xml.write_text("<net/>")
    with pytest.raises(ExportError, match=r"m\.bin are missing"):
        load_exported(xml)
    xml.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(ExportError, match="not a loadable OpenVINO IR"):
        load_exported(xml)
