"""DetectionModel (a YAML-configured YOLOv8 / LR-Net detector) and `build_model`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from lrnet.errors import ConfigError
from lrnet.nn.config import load_model_config, parse_model
from lrnet.nn.fuse import fuse_model
from lrnet.nn.head import Detect

# Dry-pass input sizes, tried in order until every level map is at least 2x2 (a 1x1 map cannot tell
# its stride apart from larger ones). Small first: building the m models stays fast.
_STRIDE_PROBE_SIZES = (64, 256, 1024)


# A config asking for more parameters than this is refused before anything is allocated (yolov8x
# has 68 M; 1 G float32 parameters are 4 GB of weights before gradients and optimizer state).
MAX_MODEL_PARAMETERS = 1_000_000_000


def count_config_parameters(cfg: dict) -> int:
    """Parameters a resolved config would have, counted on PyTorch's "meta" device (no memory used)."""
    with torch.device("meta"):
        layers, _, _ = parse_model(cfg)
    return sum(p.numel() for p in layers.parameters())


def check_model_size(cfg: dict, limit: int = MAX_MODEL_PARAMETERS) -> int:
    """Raise `ConfigError` naming the config when it would exceed `limit` parameters; return the count."""
    n = count_config_parameters(cfg)
    if n > limit:
        raise ConfigError(
            f"{cfg.get('name', 'model config')}: {n:,} parameters ({4 * n / 2**30:,.1f} GiB of float32 "
            f"weights) is above the {limit:,} limit; check the scales / width_multiple / channel values"
        )
    return n


class DetectionModel(nn.Module):
    """A detector built from a resolved config dict (see `lrnet.nn.config`).

    Training mode `forward` returns the raw per-level maps (stride ascending), eval mode the decoded
    `(B, A, 4 + nc)` tensor (xyxy input pixels, sigmoid class scores); see `Detect`.
    """

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        check_model_size(cfg)
        self.layers, self.specs, self.save = parse_model(cfg)
        self.nc: int = cfg["nc"]
        self.reg_max: int = cfg["reg_max"]
        self.names: list[str] | None = cfg.get("names")
        self.in_channels: int = cfg["ch"]
        self.detect.set_stride(self._probe_strides())
        self.detect.initialize_biases()

    @property
    def detect(self) -> Detect:
        return self.layers[-1]

    @property
    def stride(self) -> Tensor:
        """Per-level strides in input pixels, ascending (a float tensor on the model's device)."""
        return self.detect.stride

    @torch.no_grad()
    def _probe_strides(self) -> list[float]:
        """Derive the strides with a dry forward pass (eval mode, so BatchNorm statistics stay put)."""
        was_training = self.training
        self.eval()
        try:
            p = next(self.parameters())
            for size in _STRIDE_PROBE_SIZES:
                x = torch.zeros(1, self.in_channels, size, size, device=p.device, dtype=p.dtype)
                maps = self._forward_maps(x)
                if min(min(m.shape[-2:]) for m in maps) >= 2:
                    break
        finally:
            self.train(was_training)
        strides = [size / m.shape[-2] for m in maps]
        if strides != sorted(strides) or len(set(strides)) != len(strides):
            raise ConfigError(
                f"{self.cfg.get('name')}: detection levels must have distinct ascending strides, got "
                f"{strides}; list the Detect inputs from the finest level to the coarsest"
            )
        return strides

    def check_input(self, x: Tensor) -> None:
        """Raise ConfigError (a ValueError) unless x is (B, ch, H, W), H and W multiples of the top stride."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}; the model was built "
                f"for ch={self.in_channels} input channels"
            )
        s = int(self.detect.stride_values[-1])
        h, w = x.shape[-2:]
        if h % s or w % s:

            def near(v: int) -> str:
                lo, hi = max(v // s * s, s), -(-v // s) * s
                return str(lo) if lo == hi else f"{lo} or {hi}"

            raise ConfigError(
                f"input size {h}x{w} (HxW) is not a multiple of the largest stride {s}; nearest valid "
                f"sizes: height {near(h)}, width {near(w)} (letterbox/pad the image)"
            )

    def _forward_maps(self, x: Tensor) -> list[Tensor]:
        outputs: list[Tensor | None] = []
        for i, (layer, spec) in enumerate(zip(self.layers, self.specs)):
            if isinstance(spec.source, list):
                inp = [x if j == -1 else outputs[j] for j in spec.source]
            else:
                inp = x if spec.source == -1 else outputs[spec.source]
            x = layer.forward_raw(inp) if i == len(self.layers) - 1 else layer(inp)
            outputs.append(x if i in self.save else None)
        return x

    def forward_raw(self, x: Tensor) -> list[Tensor]:
        """The per-level maps `(B, 4*reg_max + nc, H_l, W_l)` whatever the mode (the training output)."""
        self.check_input(x)
        return self._forward_maps(x)

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        maps = self.forward_raw(x)
        return maps if self.training else self.detect.decode(maps)

    def fuse(self) -> DetectionModel:
        """Fold every BatchNorm into its convolution, in place; switches to eval mode. Returns self."""
        return fuse_model(self)


def build_model(
    cfg: str | Path | dict, nc: int | None = None, names: list[str] | None = None
) -> DetectionModel:
    """Build a model from a shipped name (`yolov8n`, `lrnet-s`, ...), a YAML path, or a config dict.

    `nc` (or `names`) overrides the class count. `model.cfg` holds the resolved dict, which rebuilds an
    identical architecture (`build_model(model.cfg)`).
    """
    return DetectionModel(load_model_config(cfg, nc=nc, names=names))
