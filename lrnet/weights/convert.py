"""`lrnet convert-weights IN OUT`: write a safe lrnet checkpoint from an ultralytics YOLOv8 `.pt`.

The input is read by the restricted unpickler (nothing from it runs); the architecture is the
shipped config the file names (`yolov8n.yaml` -> `yolov8n`), else the one its tensors imply: three
detection levels -> `yolov8<scale>`, four -> `yolov8<scale>-p2`, the scale from the stem width. Every
tensor must transfer, so the output is the same network, loadable with `weights_only=True`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from lrnet.errors import CheckpointError, LrnetError
from lrnet.fileio import refuse_overwriting_inputs
from lrnet.nn import build_model
from lrnet.schema import check_options, option
from lrnet.weights.checkpoint import save_checkpoint
from lrnet.weights.transfer import (
    SourceWeights,
    TransferReport,
    load_weights_source,
    transfer_weights,
)

STEM_WIDTH_SCALE = {16: "n", 32: "s", 48: "m"}  # output channels of layer 0 -> model scale


@dataclass
class ConvertWeightsJob:
    """What `lrnet convert-weights SOURCE OUTPUT` was asked to do (`convert_weights(source, output)`)."""

    source: str = option(
        help="input .pt (ultralytics YOLOv8, lrnet checkpoint or state dict)", positional=True
    )
    output: str = option(help="output lrnet checkpoint path", positional=True)

    def __post_init__(self) -> None:
        check_options(self)


def model_for_source(source: SourceWeights) -> nn.Module:
    """The lrnet model that has exactly the architecture of `source`."""
    nc = source.nc
    if source.model_cfg is not None:
        return build_model(source.model_cfg)
    candidates = [source.yaml_stem] if source.yaml_stem else []
    stem = source.tensors.get("layers.0.conv.weight")
    scale = STEM_WIDTH_SCALE.get(int(stem.shape[0])) if stem is not None else None
    if scale:
        candidates.append(f"yolov8{scale}" + ("-p2" if source.levels == 4 else ""))
    for name in candidates:
        try:
            return build_model(name, nc=nc)
        except LrnetError:
            continue
    raise CheckpointError(
        f"{source.path}: no shipped lrnet config matches this model ({source.levels} levels, stem width "
        f"{None if stem is None else int(stem.shape[0])}); lrnet converts YOLOv8 n/s/m with or without P2"
    )


def convert_weights(src: str | Path, out: str | Path) -> tuple[Path, TransferReport]:
    """Convert `src` to an lrnet checkpoint at `out` (atomically); every tensor must transfer.

    `out` may not be `src` (however spelled: links included), hold it or lie inside it.
    """
    refuse_overwriting_inputs(out, src)  # before reading: the user's checkpoint is never replaced
    source = load_weights_source(src)
    model = model_for_source(source)
    report = transfer_weights(model, source)
    if report.left_at_init:
        raise CheckpointError(
            f"{src}: {len(report.left_at_init)} tensors do not fit {model.cfg.get('name')} (e.g. "
            f"{report.left_at_init[0]}); the file is not a plain YOLOv8 detector, so it cannot be "
            "converted exactly (it can still initialise training as weights)"
        )
    names = source.names if source.names and len(source.names) == model.nc else None
    path = save_checkpoint(
        out,
        {
            "model_cfg": model.cfg,
            "names": names or [str(i) for i in range(model.nc)],
            "model": model.state_dict(),
            "epoch": -1,
            "train_args": {},
            "metrics": {},
            "converted_from": str(src),
        },
    )
    return path, report
