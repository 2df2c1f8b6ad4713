"""`lrnet export` for every format: ONNX, OpenVINO IR and TorchScript, in fp32, fp16 or int8.

Every format starts from the BN-fused float32 model. ONNX is traced once (`exporter.export_model_onnx`);
fp16 ONNX converts its weights and activations to float16 keeping float32 inputs and outputs
(onnxruntime's converter), int8 is onnxruntime's post-training static quantization (QDQ, per-channel
int8 weights, uint8 activations, MinMax calibration on letterboxed images of the data). OpenVINO IR
is converted from that ONNX (fp16: weights compressed to float16; int8: the QDQ graph, which
OpenVINO runs in int8), so one calibration serves both runtimes. TorchScript is a trace of the
fused model (fp32, fixed size).

Each written model carries the class names, input size, strides and precision, is replaced
atomically, and is checked against PyTorch: fp32 by the largest relative difference of the raw
outputs on a seeded random input (`FP32_TOLERANCE`); fp16 and int8 by their detections on images
(the data when given): the share of PyTorch's detections above conf 0.25 that have a same-class detection with
IoU >= 0.9 (`match_detections`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lrnet.data import load_dataset_source
from lrnet.data.augment import letterbox
from lrnet.data.formats import dataset_inputs
from lrnet.data.images import decode_image
from lrnet.errors import ConfigError, DataError, ExportError
from lrnet.fileio import atomic_path, refuse_overwriting_inputs
from lrnet.jobs.onnx_export import (
    export_model_onnx,
    prepare_for_export,
    relative_difference,
)
from lrnet.ops import postprocess
from lrnet.ops.boxes import box_iou
from lrnet.runtime.backends import load_exported
from lrnet.runtime.backends.metadata import build_metadata
from lrnet.runtime.backends.openvino import RT_SECTION, import_openvino
from lrnet.runtime.backends.torchscript import META_FILE
from lrnet.runtime.imgsz import check_imgsz
from lrnet.runtime.onnx_backend import ONNX_INPUT_NAME
from lrnet.schema import Choice, Range, check_options, option
from lrnet.weights.checkpoint import load_checkpoint, load_model

FORMAT_SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "torchscript": ".torchscript"}
MATCH_CONF, MATCH_IOU, MATCH_SHARE = 0.25, 0.9, 0.95  # the detection check of fp16 / int8 models
# fp32 check: boxes to 1e-3 relative, probabilities to 1e-3 absolute (float32 rounding through a trained
# network's large activations reaches a few 1e-4; the raw-output check of `exporter` is 1e-4)
FP32_TOLERANCE = 1e-3


@dataclass
class ExportJob:
    """Everything `lrnet export` was asked to do. `imgsz` None: the training size; `out` None: the
    weights path with the format's suffix (and `-fp16` / `-int8` for those precisions)."""

    weights: str = option(help="lrnet checkpoint (.pt) to export")
    format: str = option("onnx", help="model format", rule=Choice(tuple(FORMAT_SUFFIXES)))
    out: str | None = option(
        None, help="output path; not given: the weights path with the format's suffix (and -fp16 / -int8)"
    )
    imgsz: int | None = option(
        None,
        help="input size; not given: the training size, else 640",
        rule=Range(32, 32_768, multiple_of=32),
    )
    dynamic: bool = option(False, help="dynamic batch, height and width (not with int8)")
    half: bool = option(False, help="float16 weights and activations (GPU runtimes)")
    int8: bool = option(False, help="int8 post-training static quantization, calibrated on data")
    data: str | None = option(None, help="data to calibrate int8 on and to check fp16 / int8 with")
    split: str = option("train", help="split of data to take the images from")
    calib_images: int = option(64, help="images to calibrate int8 on", rule=Range(1, 100_000))
    check_images: int = option(
        8, help="images on which fp16 / int8 detections are compared with PyTorch's", rule=Range(1, 10_000)
    )
    opset: int = option(17, help="ONNX opset version", rule=Range(13, 21))
    batch: int = option(
        1, help="batch size of the exported model (fixed unless dynamic)", rule=Range(1, 1024)
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.half and self.int8:
            raise ConfigError("half=True and int8=True: choose one precision")
        if self.int8 and not self.data:
            raise ConfigError(
                "int8=True needs data to calibrate on (a data YAML or folder of the training data)"
            )
        if self.format == "torchscript" and (self.half or self.int8 or self.dynamic):
            raise ConfigError(
                "format='torchscript' is exported as fp32 at a fixed size; for fp16, int8 or dynamic sizes "
                "use format='onnx' or 'openvino'"
            )
        suffix = FORMAT_SUFFIXES[self.format]
        if self.out:  # checked first: the weights must survive whatever else is wrong with `out`
            self.check_outputs()
        if self.out and Path(self.out).suffix.lower() != suffix:
            raise ConfigError(
                f"out={self.out!r}: a {self.format} model is found by its suffix; name it *{suffix}"
            )
        if self.int8 and self.dynamic:
            raise ConfigError("int8=True with dynamic=True: calibration fixes the input size; drop dynamic")

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "fp16" if self.half else "fp32"

    def inputs(self) -> list[str | Path]:
        """What the export reads: the weights, and the data's YAML, split and image folders."""
        return [self.weights, *(dataset_inputs(self.data) if self.data else [])]

    def check_outputs(self) -> None:
        """Raise `ExportError` when a file the export writes (`out_path`, OpenVINO's `.bin`) is, holds
        or lies inside one of its `inputs`."""
        out = self.out_path()
        files = [out, out.with_suffix(".bin")] if self.format == "openvino" else [out]
        inputs = self.inputs()
        for path in files:
            refuse_overwriting_inputs(path, *inputs, error=ExportError)

    def out_path(self) -> Path:
        if self.out:
            return Path(self.out)
        w = Path(self.weights)
        tag = "" if self.precision == "fp32" else f"-{self.precision}"
        return w.with_name(w.stem + tag + FORMAT_SUFFIXES[self.format])


@dataclass
class DetectionMatch:
    """How many of the reference detections (score >= conf) the exported model reproduced."""

    matched: int
    total: int
    mean_iou: float

    @property
    def share(self) -> float:
        return self.matched / self.total if self.total else 1.0


@dataclass
class FormatExportResult:
    """Where the model went and how closely it reproduces PyTorch."""

    path: Path
    format: str
    precision: str
    imgsz: int
    dynamic: bool
    max_rel_diff: float
    detections: DetectionMatch | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.precision == "fp32":
            return self.max_rel_diff <= FP32_TOLERANCE
        return self.detections is not None and self.detections.share >= MATCH_SHARE

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files if p.is_file())


def match_detections(
    ref: list[torch.Tensor], got: list[torch.Tensor], conf: float = MATCH_CONF, iou: float = MATCH_IOU
) -> DetectionMatch:
    """Per image, each reference detection with score >= conf matches when `got` has a detection of
    its class with IoU >= iou (rows `x1 y1 x2 y2 score cls`; `got` at any score)."""
    matched, total, ious = 0, 0, []
    for r, g in zip(ref, got):
        r = r[r[:, 4] >= conf]
        total += len(r)
        if not len(r) or not len(g):
            ious += [0.0] * len(r)
            continue
        m = box_iou(r[:, :4].double(), g[:, :4].double())
        m[r[:, 5][:, None] != g[:, 5][None, :]] = 0.0
        best = m.max(1).values
        ious += best.tolist()
        matched += int((best >= iou).sum())
    return DetectionMatch(matched, total, float(np.mean(ious)) if ious else 1.0)


def letterboxed_images(data: str, split: str, imgsz: int, limit: int) -> list[torch.Tensor]:
    """Up to `limit` images of a data split, letterboxed to imgsz: (1, 3, imgsz, imgsz) RGB in [0, 1]."""
    source = load_dataset_source(data, split, verbose=False)
    out = []
    for rec in source.records:
        if len(out) == limit:
            break
        try:  # regular files only, pixel limit checked on the header
            img = decode_image(rec.im_file)
        except (DataError, FileNotFoundError) as exc:
            warnings.warn(f"skipping {rec.im_file} ({exc})", stacklevel=2)
            continue
        lb = letterbox(img, imgsz)[0][:, :, ::-1].transpose(2, 0, 1)
        out.append(torch.from_numpy(np.ascontiguousarray(lb))[None].float() / 255.0)
    if not out:
        raise ExportError(
            f"{data}: no readable images in split {split!r} to calibrate or check the export on"
        )
    return out


def _write_metadata_onnx(path: Path, meta: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))


def onnx_to_fp16(src: Path, dst: Path) -> None:
    """Convert weights and activations to float16, keeping float32 inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))


def float_convolutions(graph: Any) -> list[str]:
    """Names of the convolutions int8 leaves in float: the first (it reads the image) and the last
    of every path (the head's box-distribution and class-logit layers, no Conv after them).

    Measured on a trained lrnet-n (docs/DEPLOY.md): with every convolution quantized 85.0 % of
    PyTorch's detections above conf 0.25 were found again at IoU >= 0.9; with these 9 of 78 in
    float, 98.0 %.
    """
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    inputs = {i.name for i in graph.input}

    def conv_after(node: Any) -> bool:
        seen, stack = set(), [node]
        while stack:
            for out in stack.pop().output:
                for nxt in consumers.get(out, []):
                    if nxt.op_type == "Conv":
                        return True
                    if id(nxt) not in seen:
                        seen.add(id(nxt))
                        stack.append(nxt)
        return False

    convs = [n for n in graph.node if n.op_type == "Conv"]
    return [n.name for n in convs if inputs.intersection(n.input) or not conv_after(n)]


def onnx_to_int8(src: Path, dst: Path, images: list[torch.Tensor]) -> None:
    """onnxruntime static quantization (QDQ, per-channel int8 weights, uint8 activations, MinMax) of
    the convolutions only, except `float_convolutions`. Everything after the head's convolutions
    stays float (the DFL softmax expectation, box arithmetic, sigmoid, and the output, which mixes
    pixels with probabilities: one uint8 scale for both rounds every probability to 0 or 0.25)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(tqdm(images, desc="int8 calibration", leave=False))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {ONNX_INPUT_NAME: x.numpy()}

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=float_convolutions(onnx.load(str(src)).graph),
    )


def onnx_to_openvino(src: Path, xml: Path, meta: dict[str, str], half: bool) -> list[Path]:
    """Convert to IR with `meta` in rt_info; both files written beside and renamed (.bin, then .xml)."""

    ov = import_openvino()
    model = ov.convert_model(str(src))
    for k, v in meta.items():
        model.set_rt_info(v, [RT_SECTION, k])
    xml.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{xml.name}.", dir=xml.parent))
    try:
        ov.save_model(model, str(tmp_dir / xml.name), compress_to_fp16=half)
        written = []
        for suffix in (".bin", ".xml"):
            tmp = tmp_dir / xml.with_suffix(suffix).name
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, xml.with_suffix(suffix))
            written.append(xml.with_suffix(suffix))
        return written
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def export_torchscript(
    model: torch.nn.Module, out: Path, imgsz: int, batch: int, meta: dict[str, str]
) -> None:
    """Trace the fused model and save it with `meta` as the extra file lrnet.json (atomically)."""

    x = torch.zeros(batch, 3, imgsz, imgsz)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings: shape checks become constants at this size
        traced = torch.jit.trace(model, x, check_trace=False, strict=False)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
        torch.jit.save(traced, str(tmp), _extra_files={META_FILE: json.dumps(meta)})


def describe_export(result: FormatExportResult) -> str:
    """Two lines: what was written and how it compares with PyTorch."""
    lines = [
        f"{result.format} {result.precision}, imgsz {result.imgsz}, dynamic {result.dynamic}, "
        f"{result.size_bytes / 2**20:.1f} MiB; max relative difference to PyTorch {result.max_rel_diff:.2e}"
        + (f" (tolerance {FP32_TOLERANCE:.0e})" if result.precision == "fp32" else "")
    ]
    d = result.detections
    if d is not None:
        lines.append(
            f"detections: {d.matched}/{d.total} of PyTorch's above conf {MATCH_CONF} matched at IoU >= "
            f"{MATCH_IOU} ({100 * d.share:.1f}%, mean IoU {d.mean_iou:.3f}; need {100 * MATCH_SHARE:.0f}%)"
            + (" -- no detection to compare: the check says nothing" if d.total == 0 else "")
        )
    lines.append("check: " + ("OK" if result.ok else "FAILED"))
    return "\n".join(lines)


def _detections(model: Any, images: list[torch.Tensor]) -> list[torch.Tensor]:
    with torch.inference_mode():
        return [postprocess(model(x).float(), conf=0.001, iou=0.7, max_det=300)[0] for x in images]


def run_export(job: ExportJob) -> FormatExportResult:
    """Export `job.weights` to `job.format` at `job.precision`, then check it against PyTorch."""
    weights = Path(job.weights)
    ckpt = load_checkpoint(weights)
    model = prepare_for_export(load_model(weights))
    imgsz = job.imgsz or int((ckpt.get("train_args") or {}).get("imgsz", 640))
    imgsz = check_imgsz(imgsz, int(model.stride.max()))
    names = list(ckpt.get("names") or []) or model.names
    out = job.out_path()
    job.check_outputs()  # also a derived `out`
    meta = build_metadata(names, model.stride, imgsz, int(model.nc), job.precision, job.dynamic)
    # int8 is checked on images it was not calibrated on (the calibration ones when the split is short);
    # the other precisions read only the check images
    n_calib = job.calib_images if job.precision == "int8" else 0
    wanted = n_calib + job.check_images
    images = letterboxed_images(job.data, job.split, imgsz, wanted) if job.data else []
    calibration = images[:n_calib]
    check = images[n_calib:] or images[: job.check_images]

    files = [out]
    if job.format == "torchscript":
        export_torchscript(model, out, imgsz, job.batch, meta)
    else:
        with tempfile.TemporaryDirectory(prefix="lrnet-export-") as tmp:
            base = Path(tmp) / "model.onnx"
            export_model_onnx(
                model, base, imgsz=imgsz, dynamic=job.dynamic, opset=job.opset, batch=job.batch, names=names
            )
            if job.precision == "fp16":
                onnx_to_fp16(base, Path(tmp) / "fp16.onnx")
                base = Path(tmp) / "fp16.onnx"
            elif job.precision == "int8":
                if job.batch != 1:
                    raise ConfigError(f"batch={job.batch} with int8: calibration runs batch 1; use batch=1")
                onnx_to_int8(base, Path(tmp) / "int8.onnx", calibration)
                base = Path(tmp) / "int8.onnx"
            _write_metadata_onnx(base, meta)
            if job.format == "onnx":
                with atomic_path(out) as dst:
                    shutil.copyfile(base, dst)
            else:
                files = onnx_to_openvino(base, out, meta, half=job.half)
    return verify_export(model, out, job, imgsz, check, files)


def verify_export(
    model: torch.nn.Module,
    out: Path,
    job: ExportJob,
    imgsz: int,
    images: list[torch.Tensor],
    files: list[Path],
) -> FormatExportResult:
    """Run the written file through its backend and compare it with the PyTorch model."""
    exported = load_exported(out, trust_code=True)  # the program lrnet itself just wrote
    g = torch.Generator().manual_seed(0)
    x = torch.rand(job.batch, 3, imgsz, imgsz, generator=g)
    with torch.inference_mode():
        diff = relative_difference(exported(x), model(x))
    detections = None
    if job.precision != "fp32":
        check = images or [torch.rand(1, 3, imgsz, imgsz, generator=g) for _ in range(job.check_images)]
        detections = match_detections(_detections(model, check), _detections(exported, check))
    return FormatExportResult(out, job.format, job.precision, imgsz, job.dynamic, diff, detections, files)
