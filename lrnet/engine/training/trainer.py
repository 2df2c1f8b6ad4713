"""The training loop: SGD + warm-up + linear decay, EMA, AMP on CUDA, DDP under torchrun.

The recipe is the paper's (YOLOv8's defaults with SGD, lr0 0.01, momentum 0.937, weight decay 5e-4);
`train_config.TrainConfig` documents each choice and docs/ARCHITECTURE.md the checkpoint keys.

One epoch = train over the loader (tqdm bar on rank 0), step the schedule, validate the EMA weights
(rank 0), append a row to results.csv, redraw results.png, save weights/last.pt (and best.pt when the
fitness improves) atomically. Resume restores everything saved in last.pt and continues with the next
epoch; a run killed mid-epoch restarts that epoch from its beginning. Each epoch ends with an
optimizer step, so a checkpoint never leaves accumulated gradients behind.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm import tqdm

from lrnet.engine.inference.validator import evaluate, fitness
from lrnet.engine.run_dir import next_run_dir
from lrnet.engine.threads import apply_thread_policy
from lrnet.engine.training.checkpoint import load_checkpoint, save_checkpoint
from lrnet.engine.training.data_setup import TrainData, build_train_data, close_mosaic
from lrnet.engine.training.distributed import (
    DistContext,
    barrier,
    broadcast_object,
    cleanup_distributed,
    setup_distributed,
    sync_buffers,
    wrap_model,
)
from lrnet.engine.training.ema import ModelEMA, unwrap_model
from lrnet.engine.training.optim import (
    accumulation_steps,
    apply_warmup,
    build_optimizer,
    linear_lr_lambda,
    warmup_iterations,
)
from lrnet.engine.training.plots import plot_results
from lrnet.engine.training.rng import get_rng_state, seed_everything, set_rng_state
from lrnet.engine.training.train_config import TrainConfig
from lrnet.errors import ConfigError, InputFileNotFoundError
from lrnet.eval.coco_metrics import METRIC_NAMES
from lrnet.losses.box import parse_box_loss_spec
from lrnet.losses.detection import DetectionLoss, default_box_loss
from lrnet.nn import build_model

LOSS_NAMES = ("box_loss", "cls_loss", "dfl_loss")


@dataclass
class TrainResult:
    """What a finished run produced."""

    save_dir: Path
    last: Path | None
    best: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    best_fitness: float = 0.0
    epochs_completed: int = 0


def resolve_resume(resume: str, project: str) -> Path:
    """`resume` names a last.pt path, a run folder, or a run name under `project`."""
    p = Path(resume)
    candidates = list(
        dict.fromkeys((p, p / "weights" / "last.pt", Path(project) / resume / "weights" / "last.pt"))
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputFileNotFoundError(
        f"resume={resume!r}: no checkpoint found (looked for {', '.join(str(c) for c in candidates)}); "
        "give the path of a run's weights/last.pt"
    )


def state_dict_hash(module: nn.Module) -> str:
    """SHA-256 over every tensor of a state dict (names and raw bytes), for cross-process comparisons."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """Owns one training run; `Trainer(config).train()` or the `train(config)` function."""

    def __init__(self, config: TrainConfig) -> None:
        self.cfg = config
        self.ckpt: dict[str, Any] | None = None
        if config.resume:
            ckpt_path = resolve_resume(config.resume, config.project)
            self.ckpt = load_checkpoint(ckpt_path)
            saved = dict(self.ckpt.get("train_args") or {})
            if not saved.get("extra"):  # an always-empty field of checkpoints written before its removal
                saved.pop("extra", None)
            # The saved run's hyper-parameters win; only where/how it runs may change on resume.
            for key in ("device", "workers", "threads"):
                saved[key] = getattr(config, key)
            saved["resume"] = str(ckpt_path)
            saved["exist_ok"] = True
            self.cfg = TrainConfig.from_dict(saved, source=str(ckpt_path))
            self.save_dir = ckpt_path.parent.parent
        else:
            self.save_dir = Path(config.project) / config.name

    # ----------------------------------------------------------------------------------- set-up
    def _setup(self) -> None:
        cfg = self.cfg
        self.ctx: DistContext = setup_distributed(cfg.device)
        ctx = self.ctx
        if cfg.batch % ctx.world_size:
            raise ConfigError(
                f"batch={cfg.batch} is not divisible by the {ctx.world_size} DDP processes; "
                f"use a multiple of {ctx.world_size}"
            )
        thread_line = apply_thread_policy(
            cfg.threads, cfg.workers, int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
        )
        if ctx.is_main:
            print(thread_line)
        seed_everything(cfg.seed + ctx.rank, cfg.deterministic)
        if not self.ckpt:
            self.save_dir = next_run_dir(cfg.project, cfg.name, cfg.exist_ok) if ctx.is_main else None
            self.save_dir = broadcast_object(self.save_dir, ctx)
        self.weights_dir = self.save_dir / "weights"
        if ctx.is_main:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / "args.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

        self.data: TrainData = build_train_data(cfg, ctx)
        self.names = list(self.data.names)
        self.model = self._build_model().to(ctx.device)
        self.criterion = self._build_criterion(self.model)

        self.batch_per_rank = cfg.batch // ctx.world_size
        self.accumulate = max(round(cfg.nbs / cfg.batch), 1)
        weight_decay = cfg.weight_decay * cfg.batch * self.accumulate / cfg.nbs
        self.optimizer = build_optimizer(self.model, cfg.lr0, cfg.momentum, weight_decay)
        self.lr_factor = linear_lr_lambda(cfg.epochs, cfg.lrf)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lr_factor)
        self.amp = bool(cfg.amp and ctx.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = ModelEMA(self.model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None

        self.start_epoch, self.best_fitness, self.best_epoch = 0, -1.0, -1
        if self.ckpt:
            self._load_training_state(self.ckpt)
        self.train_model = wrap_model(self.model, ctx, cfg.sync_bn)

    def _build_model(self) -> nn.Module:
        model = build_model(self.cfg.model, nc=len(self.names))
        model.names = self.names
        return model

    def _build_criterion(self, model: nn.Module) -> nn.Module:
        if self.cfg.box_loss:
            kind, options = parse_box_loss_spec(self.cfg.box_loss)
        else:
            kind, options = default_box_loss(self.cfg.model)
        return DetectionLoss.from_model(model, box_loss=kind, box_options=options)

    def _load_training_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt.get("train_model") or ckpt["model"])
        if self.ema is not None:
            self.ema.ema.load_state_dict(ckpt["model"])
            self.ema.updates = int(ckpt.get("ema_updates", 0))
        if ckpt.get("optimizer"):
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") and self.amp:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = int(ckpt["epoch"]) + 1
        self.best_fitness = float(ckpt.get("best_fitness", -1.0))
        self.best_epoch = int(ckpt.get("best_epoch", -1))
        if ckpt.get("rng") and self.ctx.world_size == 1:
            set_rng_state(ckpt["rng"])
        elif ckpt.get("rng"):
            # Each rank draws from its own stream: re-seed it deterministically from the resumed epoch.
            seed_everything(self.cfg.seed + self.ctx.rank + 1000 * self.start_epoch, self.cfg.deterministic)
        if self.ctx.is_main:
            self._truncate_csv(self.start_epoch)

    # ----------------------------------------------------------------------------------- loop
    def train(self) -> TrainResult:
        """Run (or resume) the whole schedule; returns the paths of the checkpoints and final metrics."""
        self._setup()
        cfg, ctx = self.cfg, self.ctx
        try:
            if self.start_epoch >= cfg.epochs:
                if ctx.is_main:
                    print(
                        f"{self.save_dir}: training already finished ({cfg.epochs} epochs); nothing to resume"
                    )
                return self._result({}, self.start_epoch)
            nb = len(self.data.train_loader)
            self.warmup_iters = warmup_iterations(cfg.warmup_epochs, nb, cfg.epochs, cfg.warmup_min_iters)
            if ctx.is_main:
                print(
                    f"training {cfg.model} on {cfg.data}: {len(self.data.train_loader.dataset)} images, "
                    f"{ctx.world_size} process(es) on {ctx.device}, batch {cfg.batch} (x{self.accumulate} "
                    f"accumulation), warm-up {self.warmup_iters} iterations -> {self.save_dir}"
                )
            metrics: dict[str, float] = {}
            epoch = self.start_epoch
            for epoch in range(self.start_epoch, cfg.epochs):
                if epoch >= cfg.epochs - cfg.close_mosaic:
                    close_mosaic(self.data)
                t0 = time.time()
                losses, seen = self._train_one_epoch(epoch, nb)
                sync_buffers(self.model, ctx)
                lrs = [g["lr"] for g in self.optimizer.param_groups]
                self.scheduler.step()
                if cfg.record_seen:
                    self._record_seen(epoch, seen)
                stop = False
                if ctx.is_main:
                    metrics, fit = self._validate()
                    improved = fit > self.best_fitness
                    if improved:
                        self.best_fitness, self.best_epoch = fit, epoch
                    self._write_csv_row(epoch, losses, metrics, lrs, time.time() - t0)
                    self._save(epoch, metrics, improved)
                    stop = cfg.patience > 0 and epoch - self.best_epoch >= cfg.patience
                    if stop:
                        print(f"early stop: {cfg.patience} epochs without gain (best {self.best_epoch + 1})")
                if bool(broadcast_object(stop, ctx)):
                    break
            if cfg.record_seen:
                (self.save_dir / f"weights_rank{ctx.rank}.sha256").write_text(
                    state_dict_hash(self.model) + "\n"
                )
            barrier(ctx)
            return self._result(metrics, epoch + 1)
        finally:
            cleanup_distributed(ctx)

    def _train_one_epoch(self, epoch: int, nb: int) -> tuple[list[float], list[int]]:
        cfg, ctx = self.cfg, self.ctx
        loader = self.data.train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)  # shuffling, augmentation and DistributedSampler of this epoch
        self.train_model.train()
        mean_loss = torch.zeros(3)
        seen: list[int] = []
        last_step = -1
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(
            loader, total=nb, disable=not ctx.is_main, dynamic_ncols=True, desc=f"{epoch + 1}/{cfg.epochs}"
        )
        for i, batch in enumerate(bar):
            ni = i + nb * epoch
            accumulate = accumulation_steps(ni, self.warmup_iters, cfg.nbs, cfg.batch)
            if ni < self.warmup_iters:
                apply_warmup(
                    self.optimizer,
                    ni,
                    self.warmup_iters,
                    self.lr_factor(epoch),
                    cfg.warmup_bias_lr,
                    cfg.warmup_momentum,
                    cfg.momentum,
                )
            imgs = batch["img"].to(ctx.device, non_blocking=True).float() / 255.0
            targets = {k: batch[k].to(ctx.device) for k in ("batch_idx", "cls", "bboxes")}
            with torch.autocast(ctx.device.type, enabled=self.amp):
                preds = self.train_model(imgs)
            loss, items = self.criterion([p.float() for p in preds], targets)
            if not torch.isfinite(loss):
                warnings.warn(
                    f"epoch {epoch + 1} batch {i}: non-finite loss {loss.item()}, batch skipped", stacklevel=2
                )
                self.optimizer.zero_grad(set_to_none=True)
                continue
            # DDP averages gradients over ranks; scale back to a sum over the global batch.
            self.scaler.scale(loss * ctx.world_size).backward()
            if ni - last_step >= accumulate or i == nb - 1:
                self._optimizer_step()
                last_step = ni
            mean_loss = (mean_loss * i + items.cpu()) / (i + 1)
            if cfg.record_seen:
                seen.extend(int(v) for v in batch["image_id"])
            if ctx.is_main:
                bar.set_postfix(
                    box=f"{mean_loss[0]:.3f}",
                    cls=f"{mean_loss[1]:.3f}",
                    dfl=f"{mean_loss[2]:.3f}",
                    lr=f"{self.optimizer.param_groups[0]['lr']:.2e}",
                    inst=int(targets["cls"].numel()),
                    size=imgs.shape[-1],
                )
        bar.close()
        return mean_loss.tolist(), seen

    def _optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    # ----------------------------------------------------------------------------------- outputs
    def _eval_model(self) -> nn.Module:
        return self.ema.ema if self.ema is not None else unwrap_model(self.model)

    def _validate(self) -> tuple[dict[str, float], float]:
        if not self.cfg.val or self.data.val_loader is None:
            return {}, 0.0
        out = evaluate(
            self._eval_model(),
            self.data.val_loader,
            protocol=self.cfg.protocol,
            conf=self.cfg.conf,
            iou=self.cfg.iou,
            max_det=self.cfg.val_max_det,
            device=self.ctx.device,
            half=self.amp,
        )
        m = out["metrics"]
        print("val: " + "  ".join(f"{k} {m[k]:.4f}" for k in METRIC_NAMES if k in m))
        return m, out["fitness"]

    @property
    def csv_path(self) -> Path:
        return self.save_dir / "results.csv"

    def _truncate_csv(self, start_epoch: int) -> None:
        """Drop rows of epochs that were not checkpointed (a kill between the row and last.pt)."""
        if not self.csv_path.is_file():
            return
        with open(self.csv_path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= start_epoch]
        with open(self.csv_path, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    def _write_csv_row(
        self, epoch: int, losses: list[float], metrics: dict[str, float], lrs: list[float], seconds: float
    ) -> None:
        header = [
            "epoch",
            *(f"train/{n}" for n in LOSS_NAMES),
            *(f"metrics/{n}" for n in METRIC_NAMES),
            "fitness",
            *(f"lr/pg{j}" for j in range(len(lrs))),
            "time",
        ]
        m = [float(metrics.get(n, -1.0)) for n in METRIC_NAMES]
        row = [epoch + 1, *losses, *m, fitness(metrics) if metrics else 0.0, *lrs, seconds]
        new = not self.csv_path.is_file()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(header)
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
        if self.cfg.plots:
            try:
                plot_results(self.csv_path)
            except Exception as e:  # a plotting failure must never stop training
                warnings.warn(f"results.png not written: {e}", stacklevel=2)

    def _checkpoint(self, epoch: int, metrics: dict[str, float]) -> dict[str, Any]:
        model = unwrap_model(self.model)
        deploy = self._eval_model()
        return {
            "model_cfg": model.cfg,
            "names": self.names,
            "model": deploy.state_dict(),
            "train_model": model.state_dict(),
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else {},
            "epoch": epoch,
            "best_fitness": self.best_fitness,
            "best_epoch": self.best_epoch,
            "train_args": self.cfg.to_dict(),
            "rng": get_rng_state(),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "date": datetime.now(timezone.utc).isoformat(),
        }

    def _save(self, epoch: int, metrics: dict[str, float], improved: bool) -> None:
        ckpt = self._checkpoint(epoch, metrics)
        save_checkpoint(self.weights_dir / "last.pt", ckpt)
        if improved:
            save_checkpoint(self.weights_dir / "best.pt", ckpt)
        if self.cfg.save_period > 0 and (epoch + 1) % self.cfg.save_period == 0:
            save_checkpoint(self.weights_dir / f"epoch{epoch + 1}.pt", ckpt)

    def _record_seen(self, epoch: int, seen: list[int]) -> None:
        path = self.save_dir / f"seen_rank{self.ctx.rank}_epoch{epoch + 1}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(str(i) for i in seen) + "\n")

    def _result(self, metrics: dict[str, float], epochs_completed: int) -> TrainResult:
        last = self.weights_dir / "last.pt"
        best = self.weights_dir / "best.pt"
        return TrainResult(
            save_dir=self.save_dir,
            last=last if last.is_file() else None,
            best=best if best.is_file() else None,
            metrics=metrics,
            best_fitness=self.best_fitness,
            epochs_completed=epochs_completed,
        )


def train(config: TrainConfig | None = None, **overrides: Any) -> TrainResult:
    """Python API: `train(TrainConfig(model="yolov8n", epochs=3))` or `train(model="yolov8n", epochs=3)`."""
    if config is None:
        config = TrainConfig(**overrides)
    elif overrides:
        config = TrainConfig.from_dict({**config.to_dict(), **overrides})
    if not math.isfinite(config.lr0) or config.lr0 <= 0:
        raise ConfigError(f"lr0={config.lr0} must be a positive number; the default is 0.01")
    return Trainer(config).train()
