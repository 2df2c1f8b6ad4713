"""`Predictor`: letterbox, run a detector (PyTorch or ONNX), post-process, map boxes back to image pixels.

The model is anything with the eval-mode `DetectionModel` call: `(B, 3, H, W)` float RGB in [0, 1]
-> `(B, A, 4 + nc)` (xyxy input pixels, class probabilities). Detections come back per image as
`(n, 6)` rows `x1 y1 x2 y2 score cls` in the pixels of the image given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrnet.data.augment import letterbox
from lrnet.errors import ConfigError, ExportError
from lrnet.eval.coco_metrics import default_max_det
from lrnet.ops import postprocess, scale_boxes
from lrnet.ops.similarity_nms import NMS_METRICS
from lrnet.ops.slicing import SliceConfig, merge_tiles
from lrnet.runtime.backends import backend_for, load_exported
from lrnet.runtime.compiled import compile_for_inference
from lrnet.runtime.device import fast_memory_format, select_device
from lrnet.runtime.imgsz import check_imgsz
from lrnet.runtime.onnx_backend import OnnxModel, execution_providers
from lrnet.runtime.thread_tuner import ThreadTuner, pixels
from lrnet.runtime.threads import MAX_THREADS, ThreadControl, thread_controller
from lrnet.schema import Choice, Range, check_options, option
from lrnet.weights.checkpoint import load_checkpoint, load_model


def load_inference_model(
    weights: str | Path, device: str | torch.device = "cpu", trust_code: bool = False
) -> tuple[Any, list[str] | None, int]:
    """(model, class names, default imgsz) from an lrnet checkpoint (fused) or an exported model
    (`.onnx`, OpenVINO `.xml`, `.torchscript`: `lrnet.runtime.backends`).

    A format whose files are programs (TorchScript) is refused before it is read unless
    `trust_code` (or `LRNET_TRUST_CODE=1`): loading it runs its code (`backends.load_exported`).

    On a CPU the checkpoint's weights are stored channels-last: oneDNN's convolutions then keep every
    activation in that layout instead of converting each one to and from NCHW: measured 0.81x the
    time of yolov8n's and 0.88x of lrnet-n's forward at 640 px (docs/DEPLOY.md, "PyTorch eager").

    Raises `CheckpointError` / `ExportError` naming the file when it is not ours, and `DeviceError`
    when `device` is not available (`lrnet.runtime.device.select_device`).
    """
    weights = Path(weights)
    device = select_device(device)
    backend = backend_for(weights)
    if backend is OnnxModel:
        model = OnnxModel(weights, providers=execution_providers(device))
        return model, model.names, model.imgsz
    if backend is not None:
        model = load_exported(weights, trust_code=trust_code)
        return model, model.names, model.imgsz
    ckpt = load_checkpoint(weights)
    imgsz = int((ckpt.get("train_args") or {}).get("imgsz", 640))
    model = load_model(weights, device=device).fuse().eval().to(memory_format=fast_memory_format(device))
    names = list(ckpt.get("names") or []) or model.names
    return model, names, imgsz


def inference_imgsz(model: Any, weights: str | Path, imgsz: int | None, default: int) -> int:
    """The input size to run `model` at: `imgsz`, else `default` (its training or export size).

    Checked against the model's largest stride (`check_imgsz`) and, for an ONNX file exported without
    dynamic axes, against its fixed size (`ExportError` naming the file).
    """
    size = int(imgsz or default)
    if getattr(model, "dynamic", True) is False and size != model.imgsz:
        raise ExportError(
            f"{weights}: exported for imgsz={model.imgsz} without dynamic axes, got imgsz={size}; use "
            f"imgsz={model.imgsz} or export again with dynamic=True"
        )
    return check_imgsz(size, int(model.stride.max()))


def merged_limit(cfg: SliceConfig, protocol: str = "aitod") -> int:
    """Detections a merged, sliced image keeps: `cfg.merged_max_det`, else the protocol's default."""
    return cfg.merged_max_det or default_max_det(protocol)


class Predictor:
    """Detections of BGR images (`predict_image`, `predict_batch`) or of large images tile by tile.

    Args:
        model: eval-mode callable `(B, 3, H, W) -> (B, A, 4 + nc)`.
        imgsz: square network input size, a multiple of `stride`.
        conf, iou, max_det: post-processing (`lrnet.ops.postprocess`).
        nms_metric, nms_scale: NMS on "iou" (default) or "nwd" with constant `nms_scale` px (None: 12.8);
            sliced merging follows it unless its `SliceConfig.merge_metric` is set.
        batch: images (or tiles) per forward pass.
        tuner: fed each forward pass's time per input pixel, so it may change torch's threads
            between passes (`lrnet.runtime.threads.thread_controller`; None: the count stays).
        compile: run a PyTorch `model` compiled (`lrnet.runtime.compiled`, batches padded to `batch`);
            `model` stays the eager module, `forward` is what runs.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        device: str | torch.device = "cpu",
        batch: int = 8,
        stride: int = 32,
        nms_metric: str = "iou",
        nms_scale: float | None = None,
        tuner: ThreadTuner | None = None,
        compile: bool = False,
    ) -> None:
        self.model = model
        self.batch = max(1, int(batch))
        self.forward: Callable[[torch.Tensor], Any] = model
        if compile and isinstance(model, torch.nn.Module):
            self.forward = compile_for_inference(model, self.batch)
        self.tuner = tuner
        self.imgsz = check_imgsz(imgsz, stride)
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.nms_metric, self.nms_scale = nms_metric, nms_scale
        self.device = select_device(device)
        self.times = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        self.n_images = 0

    def speed(self) -> dict[str, float]:
        """Mean milliseconds per forward-pass image (tiles count as images) of each stage so far."""
        n = max(self.n_images, 1)
        return {k: 1000.0 * v / n for k, v in self.times.items()}

    def preprocess(self, imgs: Sequence[np.ndarray]) -> tuple[torch.Tensor, list]:
        """Letterbox BGR uint8 images to imgsz -> (B, 3, imgsz, imgsz) RGB float in [0, 1], ratio_pads."""
        arrays, ratio_pads = [], []
        for img in imgs:
            lb, ratio, pad = letterbox(img, self.imgsz)
            arrays.append(lb[:, :, ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
            ratio_pads.append((ratio, pad))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays))).to(self.device).float() / 255.0
        return x, ratio_pads

    @torch.inference_mode()
    def predict_batch(self, imgs: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Detections (n, 6) in each image's own pixels, for any number of images (run in chunks)."""
        results: list[torch.Tensor] = []
        for i in range(0, len(imgs), self.batch):
            chunk = imgs[i : i + self.batch]
            t0 = time.perf_counter()
            x, ratio_pads = self.preprocess(chunk)
            t1 = time.perf_counter()
            preds = self.forward(x)
            if isinstance(preds, (tuple, list)):
                preds = preds[0]
            t2 = time.perf_counter()
            if self.tuner is not None:
                self.tuner.step((t2 - t1) / pixels(x))
            dets = postprocess(
                preds.float(), conf=self.conf, iou=self.iou, max_det=self.max_det,
                nms_metric=self.nms_metric, nms_scale=self.nms_scale,
            )  # fmt: skip
            for det, rp, img in zip(dets, ratio_pads, chunk):
                det = det.cpu().clone()
                det[:, :4] = scale_boxes(det[:, :4], rp, img.shape[:2])
                results.append(det)
            t3 = time.perf_counter()
            for k, dt in zip(self.times, (t1 - t0, t2 - t1, t3 - t2)):
                self.times[k] += dt
            self.n_images += len(chunk)
        return results

    def predict_image(self, img: np.ndarray) -> torch.Tensor:
        """Detections (n, 6) of one BGR image, in its pixels."""
        return self.predict_batch([img])[0]

    def predict_sliced(self, img: np.ndarray, cfg: SliceConfig, protocol: str = "aitod") -> torch.Tensor:
        """Tile `img` into overlapping `cfg.slice` windows, predict every tile (at most `max_det` each,
        plus the whole image, resized, when `cfg.full_image`), shift boxes to image pixels and merge
        (`merge_tiles`: `cfg.merge` on `cfg.resolved_metric(self.nms_metric)` at `cfg.merge_threshold`).
        The merged image keeps at most `cfg.merged_max_det` rows (0: `default_max_det(protocol)`)."""
        if not cfg.slice:
            raise ConfigError("predict_sliced needs a tile side: SliceConfig(slice=N), N >= 32")
        h, w = img.shape[:2]
        windows = cfg.windows(h, w)
        full = self.predict_image(img) if cfg.full_image and len(windows) > 1 else None
        tiles = ((win, img[win[1] : win[3], win[0] : win[2]]) for win in windows)
        return self.predict_windows(tiles, (h, w), cfg, merged_limit(cfg, protocol), full)

    def predict_windows(
        self,
        tiles: Iterable[tuple[tuple[int, int, int, int], np.ndarray]],
        image_hw: tuple[int, int],
        cfg: SliceConfig,
        max_det: int | None,
        full: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Merged detections (image pixels) of `tiles`, an iterable of (window (x0, y0, x1, y1), BGR
        tile) of an image of size `image_hw` that need not exist in memory (a raster read window by
        window): tiles are predicted `batch` at a time as they come, and only the tiles with
        detections are kept for the merge (`merge_tiles` with `cfg`'s merge; `full`: detections of
        the whole image, resized; at most `max_det` rows, None: all)."""
        per_tile: list[torch.Tensor] = []
        windows: list[tuple[int, int, int, int]] = []
        chunk: list[tuple[tuple[int, int, int, int], np.ndarray]] = []

        def flush() -> None:
            for (win, _), det in zip(chunk, self.predict_batch([t for _, t in chunk])):
                if det.shape[0]:
                    per_tile.append(det)
                    windows.append(win)
            chunk.clear()

        for item in tiles:
            chunk.append(item)
            if len(chunk) >= self.batch:
                flush()
        if chunk:
            flush()
        t0 = time.perf_counter()
        merged = merge_tiles(
            per_tile, windows, image_hw, full, cfg.edge_margin, iou=cfg.merge_threshold,
            match=cfg.resolved_metric(self.nms_metric), postprocess=cfg.merge,
            class_agnostic=cfg.merge_agnostic, max_det=max_det,
        )  # fmt: skip
        self.times["postprocess"] += time.perf_counter() - t0
        return merged


@dataclass(kw_only=True)
class InferenceOptions:
    """inference (how the detector runs and what it keeps)

    Shared by `lrnet val` and `lrnet predict` (each with its own defaults, `option_like`); `slicing`
    is the one `SliceConfig` of the job.
    """

    imgsz: int | None = option(
        None, help="input size (default: the training or export size)", rule=Range(32, 32_768, multiple_of=32)
    )
    conf: float = option(0.25, help="confidence threshold", rule=Range(0, 1))
    iou: float = option(0.7, help="NMS threshold (IoU, or NWD with nms_metric nwd)", rule=Range(0, 1))
    max_det: int = option(
        300, help="detections kept per image, per tile when sliced (0: the protocol's, 1500 for aitod)",
        rule=Range(0, 100_000),
    )  # fmt: skip
    batch: int = option(8, help="images (or tiles) per forward pass", rule=Range(1, 65_536))
    device: str = option("cpu", help="cpu, cuda, cuda:N or auto")
    threads: int = option(
        0, help="torch intra-op threads: 0 = adaptive (re-measured while a long run goes on); N = fixed, "
        "for bit-identical outputs", rule=Range(0, MAX_THREADS),
    )  # fmt: skip
    nms_metric: str = option("iou", help="NMS on iou or nwd (docs/SIMILARITY.md)", rule=Choice(NMS_METRICS))
    nms_scale: float = option(
        0.0, help="NWD constant C in pixels for nms_metric nwd (0: 12.8)", rule=Range(0, 100_000)
    )
    slicing: SliceConfig = option(default_factory=SliceConfig, help="sliced inference")
    compile: bool = option(
        False, help="torch.compile a PyTorch model (frozen weights): faster over hundreds of images or "
        "tiles after 10-30 s of compiling; needs a C++ compiler (falls back to eager); fixes the threads",
    )  # fmt: skip
    trust_code: bool = option(
        False, help="load model files that are programs (TorchScript: its code runs when loaded; also "
        "LRNET_TRUST_CODE=1); only for files you trust",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_options(self)

    def kept_per_image(self, protocol: str = "aitod") -> int:
        """Detections kept per image (per tile when sliced): `max_det`, else the protocol's default."""
        return self.max_det or default_max_det(protocol)

    def predictor(
        self, model: Any, imgsz: int, protocol: str = "aitod", tuner: ThreadTuner | None = None
    ) -> Predictor:
        """A `Predictor` of `model` with these options at input size `imgsz` (`tuner`: see `Predictor`)."""
        return Predictor(
            model, imgsz=imgsz, conf=self.conf, iou=self.iou, max_det=self.kept_per_image(protocol),
            device=self.device, batch=self.batch, stride=int(model.stride.max()),
            nms_metric=self.nms_metric, nms_scale=self.nms_scale or None, tuner=tuner, compile=self.compile,
        )  # fmt: skip

    def thread_control(self, models: Sequence[Any], workers: int = 0) -> ThreadControl:
        """Set torch's threads for a job running `models` (`thread_controller` over `threads`, forward
        passes); its tuner goes to their predictors (`predictor(..., tuner=)`).

        Adapted only for one PyTorch model on a CPU: torch's threads do not run an exported model's
        forward pass (onnxruntime and OpenVINO have their own), a GPU's forward time hardly depends on
        them (and is not synchronised where it is timed), and several models drawn side by side
        alternate passes whose times would mix in one tuner."""
        why_not = ""
        if select_device(self.device).type != "cpu":
            why_not = f"the model runs on {self.device}"
        elif len(models) > 1:
            why_not = f"{len(models)} models alternate"
        elif not all(isinstance(m, torch.nn.Module) for m in models):
            why_not = "an exported model runs on its own threads"
        elif self.compile:
            why_not = "compiled kernels keep the thread count they were compiled with"
        return thread_controller(self.threads, workers, work="forward", adapt=not why_not, why_not=why_not)
