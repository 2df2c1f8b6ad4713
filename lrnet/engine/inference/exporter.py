"""Export a checkpoint to ONNX (`lrnet export`) and check onnxruntime against PyTorch.

The graph is traced with PyTorch's TorchScript-based exporter (`dynamo=False`: torch >= 2.9 defaults
to the dynamo exporter, which needs onnxscript, not a dependency of lrnet). There is no
onnx-simplifier step: BatchNorm is folded in PyTorch before tracing and onnxruntime applies its own
graph optimisations when loading.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from lrnet.engine.imgsz import check_imgsz
from lrnet.engine.inference.onnx_backend import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, OnnxModel
from lrnet.engine.training.checkpoint import load_checkpoint, load_model
from lrnet.errors import DependencyError, ExportError
from lrnet.fileio import atomic_path, refuse_overwriting_inputs
from lrnet.schema import Range, Rule, check_rules

VERIFY_TOLERANCE = 1e-4

# Ranges of the export options (lrnet.schema); imgsz is further checked against the model's stride.
EXPORT_RULES: dict[str, Rule] = {
    "imgsz": Range(32, 32_768),
    "batch": Range(1, 1024, example=1),
    "opset": Range(11, 23, example=17),
}


@dataclass
class ExportResult:
    """Where the model went and how closely onnxruntime reproduces PyTorch."""

    path: Path
    imgsz: int
    dynamic: bool
    max_rel_diff_boxes: float
    max_rel_diff_scores: float

    @property
    def max_rel_diff(self) -> float:
        return max(self.max_rel_diff_boxes, self.max_rel_diff_scores)

    @property
    def ok(self) -> bool:
        return self.max_rel_diff <= VERIFY_TOLERANCE


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(|b|, 1): relative for box coordinates (pixels), absolute for probabilities."""
    a, b = a.double(), b.double()
    if a.shape != b.shape:
        raise ExportError(
            f"exported output shape {tuple(a.shape)} differs from PyTorch's {tuple(b.shape)}; export again"
        )
    if a.numel() == 0:
        return 0.0
    return float(((a - b).abs() / b.abs().clamp(min=1.0)).max())


def prepare_for_export(model: nn.Module) -> nn.Module:
    """Fuse BatchNorm, switch to eval and float32, and forget cached anchors (so they are traced)."""
    model = model.float().eval()
    if hasattr(model, "fuse"):
        model.fuse()
    detect = getattr(model, "detect", None)
    if detect is not None and hasattr(detect, "clear_anchor_cache"):
        detect.clear_anchor_cache()
    return model


def export_model_onnx(
    model: nn.Module,
    out: str | Path,
    imgsz: int = 640,
    dynamic: bool = False,
    opset: int = 17,
    batch: int = 1,
    names: list[str] | None = None,
) -> Path:
    """Trace an eval-mode `DetectionModel` to `out` with input "images" and output "predictions".

    Embeds `names`, `stride`, `imgsz`, `nc` (JSON strings) in `metadata_props`. `dynamic` makes the
    batch, height and width axes dynamic (height and width must still be multiples of the largest stride).
    """
    try:
        import onnx
    except ImportError as e:
        raise DependencyError(
            f"ONNX export needs the onnx package ({e}); install the export extra: pip install 'lrnet[export]'"
        ) from e

    out = Path(out)
    model = prepare_for_export(model)
    x = torch.zeros(batch, getattr(model, "in_channels", 3), imgsz, imgsz)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            ONNX_INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            ONNX_OUTPUT_NAME: {0: "batch", 1: "anchors"},
        }
    # Graph and metadata go into one temporary file beside `out`, renamed over it once complete:
    # a kill at any moment leaves the previous export (or nothing), never a torn or bare graph.
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about shape checks turned into constants
            try:
                torch.onnx.export(
                    model,
                    (x,),
                    str(tmp),
                    dynamo=False,
                    input_names=[ONNX_INPUT_NAME],
                    output_names=[ONNX_OUTPUT_NAME],
                    opset_version=opset,
                    dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                )
            except OSError:
                raise  # a full disk or a read-only folder: atomic_path says so, naming `out`
            except Exception as e:  # the exporter raises many types (unsupported opset, operator, ...)
                first = (str(e).strip().splitlines() or [""])[0]
                raise ExportError(
                    f"{out}: ONNX export with opset={opset} failed ({type(e).__name__}: {first}); "
                    "use opset=17 (the default)"
                ) from e
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        names = names if names is not None else getattr(model, "names", None)
        nc = int(getattr(model, "nc", 0))
        meta = {
            "names": json.dumps(list(names) if names else [str(i) for i in range(nc)]),
            "stride": json.dumps([float(s) for s in model.stride.tolist()]),
            "imgsz": str(int(imgsz)),
            "nc": str(nc),
            "producer": "lrnet",
        }
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(proto, str(tmp))
    return out


@torch.inference_mode()
def verify_onnx(
    model: nn.Module, onnx_path: str | Path, imgsz: int, batch: int = 1, seed: int = 0
) -> tuple[float, float]:
    """(boxes, scores) `relative_difference` of onnxruntime vs PyTorch on a seeded random input."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, getattr(model, "in_channels", 3), imgsz, imgsz, generator=g)
    ref = model(x)
    got = OnnxModel(onnx_path)(x)
    return relative_difference(got[..., :4], ref[..., :4]), relative_difference(got[..., 4:], ref[..., 4:])


def export_onnx(
    weights: str | Path,
    out: str | Path | None = None,
    imgsz: int | None = None,
    dynamic: bool = False,
    opset: int = 17,
    batch: int = 1,
) -> ExportResult:
    """Load a checkpoint, fuse, export to ONNX (default: the weights path with `.onnx`) and verify it.

    `imgsz` defaults to the training size stored in the checkpoint, else 640.
    """
    weights = Path(weights)
    check_rules(SimpleNamespace(imgsz=imgsz, batch=batch, opset=opset), EXPORT_RULES)
    out = Path(out) if out is not None else weights.with_suffix(".onnx")
    refuse_overwriting_inputs(out, weights, error=ExportError)
    ckpt = load_checkpoint(weights)
    if imgsz is None:
        imgsz = int((ckpt.get("train_args") or {}).get("imgsz", 640))
    model = load_model(weights)
    imgsz = check_imgsz(imgsz, int(model.stride.max()))
    if batch < 1:
        raise ExportError(f"batch={batch} must be >= 1 (the exported input's batch size)")
    names = list(ckpt.get("names") or []) or model.names
    export_model_onnx(model, out, imgsz=imgsz, dynamic=dynamic, opset=opset, batch=batch, names=names)
    d_boxes, d_scores = verify_onnx(model, out, imgsz, batch=batch)
    return ExportResult(out, imgsz, dynamic, d_boxes, d_scores)
