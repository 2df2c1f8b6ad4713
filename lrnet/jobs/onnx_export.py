"""Trace a model to ONNX: the one ONNX export every format of `lrnet export` starts from
(`lrnet.jobs.export.run_export` adds precisions, OpenVINO and the checks).

The graph is traced with PyTorch's TorchScript-based exporter (`dynamo=False`: torch >= 2.9 defaults
to the dynamo exporter, which needs onnxscript, not a dependency of lrnet). There is no
onnx-simplifier step: BatchNorm is folded in PyTorch before tracing and onnxruntime applies its own
graph optimisations when loading.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from lrnet.errors import DependencyError, ExportError
from lrnet.fileio import atomic_path
from lrnet.runtime.onnx_backend import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME


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
