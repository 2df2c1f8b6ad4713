"""The end-to-end demo behind `make demo`: synthetic data -> train -> AI-TOD evaluation -> sliced
prediction on a large image -> `report.md`. Everything runs on the CPU in minutes and downloads nothing.
`lrnet demo`'s flags are the fields of `DemoConfig`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lrnet.data import generate_synthetic
from lrnet.data.dataset import DetectionDataset
from lrnet.data.loader import build_dataloader
from lrnet.data.synthetic import render_image
from lrnet.errors import ConfigError, RunError
from lrnet.eval.coco_metrics import METRIC_NAMES, default_max_det
from lrnet.nn.summary import model_info
from lrnet.ops.slicing import SliceConfig
from lrnet.runtime.device import select_device
from lrnet.runtime.drawing import draw_detections
from lrnet.runtime.imgsz import check_imgsz
from lrnet.runtime.predictor import Predictor
from lrnet.runtime.validator import evaluate
from lrnet.schema import Range, check_options, option, option_like
from lrnet.training.train_config import TrainConfig
from lrnet.training.trainer import train
from lrnet.weights.checkpoint import load_model

# What each AI-TOD metric means, for the report; its rows follow `lrnet.eval.METRIC_NAMES`.
METRIC_MEANINGS = {
    "AP": "AP@[.50:.95], all sizes",
    "AP50": "AP@.50",
    "AP75": "AP@.75",
    "APvt": "very tiny (< 8 px)",
    "APt": "tiny (8-16 px)",
    "APs": "small (16-32 px)",
    "APm": "medium (>= 32 px)",
}
PROTOCOL = "aitod"


@dataclass
class DemoConfig:
    """Sizes of the demo run; the defaults fit in about 10 minutes on a 2-core CPU. The options it
    shares with training (model, imgsz, epochs, batch, workers, device) are `TrainConfig`'s, with the
    demo's defaults (`option_like`)."""

    out: str = option("runs/demo", help="folder of the demo: data, training run, report.md")
    model: str = option_like(TrainConfig, "model", "lrnet-n")
    train_images: int = option(300, help="synthetic training images", rule=Range(1, 1_000_000))
    val_images: int = option(50, help="synthetic validation images", rule=Range(1, 1_000_000))
    imgsz: int = option_like(TrainConfig, "imgsz", 256)
    epochs: int = option_like(TrainConfig, "epochs", 12)
    batch: int = option_like(TrainConfig, "batch", 16)
    workers: int = option_like(TrainConfig, "workers", 2)
    seed: int = option(
        0, help="seed of the synthetic data, the training and the large image", rule=Range(0, 2**63 - 1)
    )
    device: str = option_like(TrainConfig, "device", "cpu")
    large_image: int = option(
        1024, help="side of the large image predicted tile by tile (>= imgsz)", rule=Range(32, 32_768)
    )
    conf: float = option(
        0.1, help="confidence threshold of the drawn sliced prediction", rule=Range(0, 1, example=0.1)
    )

    def __post_init__(self) -> None:
        """Refuse sizes that would only fail after minutes of data generation or training."""
        check_options(self)
        check_imgsz(self.imgsz, 32)
        if self.large_image < self.imgsz:
            raise ConfigError(
                f"large_image={self.large_image} is smaller than imgsz={self.imgsz}; the sliced prediction "
                f"needs a large image, e.g. large_image={4 * self.imgsz}"
            )


def _pct(value: float) -> str:
    return "n/a" if value < 0 else f"{100 * value:.1f}"


def run_demo(cfg: DemoConfig) -> Path:
    """Run the whole story and return the path of the Markdown report."""
    import cv2
    import torch

    device = select_device(cfg.device)  # fail before any work when the device is not there
    max_det = default_max_det(PROTOCOL)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    print(
        f"[1/4] synthetic tiny-object data: {cfg.train_images} train + {cfg.val_images} val at {cfg.imgsz}px"
    )
    t0 = time.perf_counter()
    data_root = out / "data"
    data_yaml = data_root / "data.yaml"
    if not data_yaml.is_file():
        generate_synthetic(
            data_root, train=cfg.train_images, val=cfg.val_images, imgsz=cfg.imgsz, seed=cfg.seed, workers=2
        )
    timings["data"] = time.perf_counter() - t0

    print(f"[2/4] training {cfg.model} for {cfg.epochs} epochs")
    t0 = time.perf_counter()
    result = train(
        model=cfg.model,
        data=str(data_yaml),
        epochs=cfg.epochs,
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        workers=cfg.workers,
        device=cfg.device,
        seed=cfg.seed,
        # A short CPU run: no gradient accumulation, and plain (non-mosaic) images for the second half,
        # where the model learns fastest at this budget.
        nbs=cfg.batch,
        close_mosaic=max(1, cfg.epochs // 2),
        project=str(out),
        name="train",
        exist_ok=True,
    )
    timings["train"] = time.perf_counter() - t0
    weights = result.best or result.last
    if weights is None:
        raise RunError(
            f"{result.save_dir}: training wrote no checkpoint; check the folder is writable and retry"
        )

    print(f"[3/4] AI-TOD evaluation of {weights}")
    t0 = time.perf_counter()
    model = load_model(weights, device=device)
    info = model_info(model, imgsz=cfg.imgsz)
    model.fuse()
    val_set = DetectionDataset(str(data_yaml), split="val", imgsz=cfg.imgsz, augment=False)
    loader = build_dataloader(val_set, batch_size=cfg.batch, shuffle=False, workers=0)
    evaluation = evaluate(model, loader, protocol=PROTOCOL, max_det=max_det, device=device)
    timings["evaluate"] = time.perf_counter() - t0

    print(f"[4/4] sliced prediction on a {cfg.large_image}x{cfg.large_image} drone-like image")
    t0 = time.perf_counter()
    big, gt_boxes, _ = render_image(cfg.seed, "demo", 0, imgsz=cfg.large_image, nc=len(val_set.names))
    predictor = Predictor(model, imgsz=cfg.imgsz, conf=cfg.conf, iou=0.7, max_det=max_det, device=device)
    with torch.inference_mode():
        dets = predictor.predict_sliced(big, SliceConfig(slice=cfg.imgsz, overlap=0.2))
    annotated = draw_detections(big.copy(), dets, list(val_set.names))
    cv2.imwrite(str(out / "prediction_sliced.png"), annotated)
    timings["predict"] = time.perf_counter() - t0

    curves = result.save_dir / "results.png"
    if curves.is_file() and curves.parent != out:
        shutil.copy(curves, out / "results.png")
    report = _write_report(cfg, out, weights, evaluation, info, len(dets), len(gt_boxes), timings, max_det)
    (out / "metrics.json").write_text(
        json.dumps({"config": asdict(cfg), "metrics": evaluation["metrics"], "timings_s": timings}, indent=2)
    )
    return report


def _write_report(cfg, out, weights, evaluation, info, n_dets, n_gt, timings, max_det) -> Path:

    m = evaluation["metrics"]
    speed = evaluation["speed"]
    lines = [
        "# lrnet demo report",
        "",
        f"{cfg.model} trained for {cfg.epochs} epochs on the built-in synthetic tiny-object set "
        f"({cfg.train_images} train / {cfg.val_images} val images of {cfg.imgsz}px, seed {cfg.seed}), "
        f"evaluated with the AI-TOD protocol (maxDets {max_det}, size bins 8/16/32 px). "
        f"Weights: `{weights}`.",
        "",
        "## Metrics (%)",
        "",
        "| metric | meaning | value |",
        "|---|---|---|",
        *(f"| {k} | {METRIC_MEANINGS.get(k, k)} | {_pct(m[k])} |" for k in METRIC_NAMES if k in m),
        "",
        "Per-class AP: " + ", ".join(f"{k} {_pct(v)}" for k, v in evaluation["per_class"].items()),
        "",
        f"Model: {info['params']:,} parameters, {info['gflops']:.2f} GFLOPs at {cfg.imgsz}px; "
        f"strides {info['strides']}. Validation speed per image: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in speed.items())
        + ".",
        "",
        "## Training curves",
        "",
        "![training curves](results.png)",
        "",
        "## Sliced inference on a large image",
        "",
        f"A {cfg.large_image}x{cfg.large_image} synthetic drone-like image ({n_gt} labelled objects) "
        f"tiled into {cfg.imgsz}px windows with 20% overlap; {n_dets} detections at confidence "
        f">= {cfg.conf} after merging.",
        "",
        "![sliced prediction](prediction_sliced.png)",
        "",
        "## Timings (s)",
        "",
        ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
