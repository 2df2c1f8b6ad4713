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
import dataclasses
import hashlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from lrnet.errors import ConfigError, InputFileNotFoundError, RunError
from lrnet.eval.coco_metrics import METRIC_NAMES
from lrnet.fileio import (
    atomic_write,
    refuse_overwriting_inputs,
    remove_stale_temporaries,
    same_file,
    write_text_atomic,
)
from lrnet.losses.box import BoxLossConfig, parse_box_loss_spec, resolve_box_loss
from lrnet.losses.detection import YOLOV8_ASSIGNER, DetectionLoss, default_assigner, default_box_loss
from lrnet.nn import build_model
from lrnet.nn.config import load_model_config
from lrnet.runtime.allocator import keep_freed_memory
from lrnet.runtime.device import fast_memory_format
from lrnet.runtime.run_dir import next_run_dir
from lrnet.runtime.run_lock import RunLock
from lrnet.runtime.thread_tuner import ThreadTuner
from lrnet.runtime.threads import thread_controller
from lrnet.runtime.validator import evaluate, fitness
from lrnet.training.callbacks import Callbacks
from lrnet.training.data_setup import TrainData, build_train_data, close_mosaic, train_inputs
from lrnet.training.distributed import (
    DistContext,
    barrier,
    broadcast_object,
    cleanup_distributed,
    setup_distributed,
    sync_buffers,
    wrap_model,
)
from lrnet.training.ema import ModelEMA, auto_ema_tau, plain_state_dict, unwrap_model
from lrnet.training.optim import (
    accumulation_steps,
    apply_warmup,
    linear_lr_lambda,
    warmup_iterations,
)
from lrnet.training.optimizer_choice import (
    auto_iterations,
    build_named_optimizer,
    cosine_lr_lambda,
    resolve_optimizer,
)
from lrnet.training.plots import plot_results
from lrnet.training.recipe import (
    freeze_layers,
    frozen_layer_count,
    keep_frozen_norms_eval,
    multi_scale_batch,
)
from lrnet.training.rng import get_rng_state, seed_everything, set_rng_state
from lrnet.training.run_logging import epoch_scalars, save_first_batch, start_logging
from lrnet.training.similarity_setup import resolve_similarity_scales
from lrnet.training.train_config import TrainConfig
from lrnet.weights.checkpoint import (
    build_model_from_checkpoint,
    check_finite_weights,
    load_checkpoint,
    save_checkpoint,
)
from lrnet.weights.transfer import SourceWeights, load_weights_source, transfer_weights

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
    initial_metrics: dict[str, float] = field(default_factory=dict)  # epoch-0 validation of --weights


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


def resume_run_dir(ckpt_path: Path, ckpt: dict[str, Any]) -> Path | None:
    """The run folder a resumed run writes to: the one the checkpoint records, if the file lies in it.

    A checkpoint copied elsewhere (e.g. ~/Downloads/last.pt) gets None: a new run folder, never one
    derived from where the file lies. Checkpoints written before `save_dir` was recorded are resumed
    in place only when they sit in a run folder's layout (`<run>/weights/last.pt` beside args.yaml).
    """
    recorded = ckpt.get("save_dir")
    if recorded:
        run = Path(str(recorded))
        candidate = run / "weights" / ckpt_path.name
        return run if candidate.is_file() and same_file(candidate, ckpt_path) else None
    run = ckpt_path.resolve().parent.parent
    if ckpt_path.resolve().parent.name == "weights" and (run / "args.yaml").is_file():
        return run
    return None


def state_dict_hash(module: nn.Module) -> str:
    """SHA-256 over every tensor of a state dict (names and raw bytes), for cross-process comparisons."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def with_model_assigner(config: TrainConfig) -> TrainConfig:
    """`config` with the assigner settings it leaves to the model (`assign_metric` "", `assign_outside`
    None, `assign_min_side` None) filled from the model's config (`default_assigner`), so that
    args.yaml, the checkpoint and a resumed run record the assigner the run trains with, whatever the
    model's default becomes."""
    if config.assign_metric and config.assign_outside is not None and config.assign_min_side is not None:
        return config
    metric, outside, min_side = default_assigner(config.model)
    return dataclasses.replace(
        config,
        assign_metric=config.assign_metric or metric,
        assign_outside=outside if config.assign_outside is None else config.assign_outside,
        assign_min_side=min_side if config.assign_min_side is None else config.assign_min_side,
    )


class Trainer:
    """Owns one training run; `Trainer(config).train()` or the `train(config)` function."""

    def __init__(self, config: TrainConfig, callbacks: Callbacks | dict | None = None) -> None:
        self.cfg = config
        self.ckpt: dict[str, Any] | None = None
        self.callbacks = callbacks if isinstance(callbacks, Callbacks) else Callbacks(callbacks)
        self.weights_source: SourceWeights | None = None
        self.initial_metrics: dict[str, float] = {}
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
            saved["weights"] = ""  # the run's own weights are restored from last.pt
            for key, before in YOLOV8_ASSIGNER:
                saved.setdefault(key, before)  # what every run trained with before the option existed
            self.cfg = with_model_assigner(TrainConfig.from_dict(saved, source=str(ckpt_path)))
            check_finite_weights(self.ckpt["model"], ckpt_path)
            check_finite_weights(self.ckpt.get("train_model") or self.ckpt["model"], ckpt_path, "train_model")
            self.resume_path = ckpt_path
            self.save_dir = resume_run_dir(ckpt_path, self.ckpt)  # None: a new folder, chosen in _setup
        else:
            self.resume_path = None
            self.save_dir = Path(config.project) / config.name
            load_model_config(config.model)  # a wrong model or weights is refused before any run folder
            self.cfg = with_model_assigner(config)
            if config.weights:
                self.weights_source = load_weights_source(config.weights)
                transfer_weights(build_model(config.model), self.weights_source)
        self.lock: RunLock | None = None
        self.thread_tuner: ThreadTuner | None = None
        self.threads_before: int | None = None  # torch's count before this run set its own

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
        self.threads_before = torch.get_num_threads()
        # DDP ranks apply the same all-reduced gradients; their clipping norms and other reductions
        # must split alike for their weights to stay identical, so their count is not adapted.
        threads = thread_controller(
            cfg.threads, cfg.workers, int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size)),
            work="iteration", adapt=ctx.world_size == 1,
            why_not=f"{ctx.world_size} DDP ranks must split their sums alike",
        )  # fmt: skip
        self.thread_tuner, self.thread_line = threads.tuner, threads.line
        if ctx.is_main:
            print(self.thread_line)
        seed_everything(cfg.seed + ctx.rank, cfg.deterministic)
        allocator_line = keep_freed_memory()
        if ctx.is_main:
            print(allocator_line)
        inputs = train_inputs(cfg) if ctx.is_main else []  # no run folder is, holds or is inside one
        if not self.ckpt or self.save_dir is None:
            keep = cfg.exist_ok and not self.ckpt
            new_dir = next_run_dir(cfg.project, cfg.name, keep, inputs=inputs) if ctx.is_main else None
            if self.ckpt and ctx.is_main:
                print(
                    f"{self.resume_path} is not in the run folder it records "
                    f"({self.ckpt.get('save_dir') or 'none recorded'}): resuming into a new run folder "
                    f"{new_dir}"
                )
            self.save_dir = broadcast_object(new_dir, ctx)
        self.weights_dir = self.save_dir / "weights"
        if ctx.is_main:
            refuse_overwriting_inputs(self.save_dir, *inputs)  # also a resumed run's own folder
            self.lock = RunLock(self.save_dir).acquire()  # a second writer of this folder is refused
            removed = remove_stale_temporaries(self.save_dir) + remove_stale_temporaries(self.weights_dir)
            if removed:
                print(f"{self.save_dir}: removed {len(removed)} temporary file(s) left by a killed run")
            try:
                self.weights_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RunError(
                    f"{self.weights_dir}: cannot create it ({e.strerror or e}); choose a writable folder"
                ) from e
            args_yaml = f"# {self.thread_line}\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False)
            write_text_atomic(self.save_dir / "args.yaml", args_yaml)  # the comment: how threads ran

        self.data: TrainData = build_train_data(cfg, ctx)
        self.names = list(self.data.names)
        self.amp = bool(cfg.amp and ctx.device.type == "cuda")
        self.memory_format = fast_memory_format(ctx.device, self.amp)
        self.model = self._build_model().to(ctx.device, memory_format=self.memory_format)
        self.criterion = self._build_criterion(self.model)

        self.frozen_norms = freeze_layers(self.model, frozen_layer_count(self.model, cfg.freeze))
        self.batch_per_rank = cfg.batch // ctx.world_size
        self.accumulate = max(round(cfg.nbs / cfg.batch), 1)
        weight_decay = cfg.weight_decay * cfg.batch * self.accumulate / cfg.nbs
        iterations = auto_iterations(len(self.data.train_loader.dataset), cfg.batch, cfg.nbs, cfg.epochs)
        kind, lr0, self.momentum = resolve_optimizer(
            cfg.optimizer, cfg.lr0, cfg.momentum, len(self.names), iterations
        )
        if ctx.is_main and cfg.optimizer == "auto":
            print(f"optimizer auto: {kind} lr0={lr0:g} momentum={self.momentum:g} ({iterations} iterations)")
        self.optimizer = build_named_optimizer(self.model, kind, lr0, self.momentum, weight_decay)
        self.warmup_bias_lr = cfg.warmup_bias_lr if kind == "sgd" else min(cfg.warmup_bias_lr, lr0)
        self.lr_factor = (cosine_lr_lambda if cfg.cos_lr else linear_lr_lambda)(cfg.epochs, cfg.lrf)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lr_factor)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = ModelEMA(self.model, cfg.ema_decay, self._ema_tau(iterations)) if cfg.ema else None
        self.scale_rng = np.random.default_rng([cfg.seed, ctx.rank, 12])

        self.start_epoch, self.best_fitness, self.best_epoch = 0, -1.0, -1
        if self.ckpt:
            self._load_training_state(self.ckpt)
        self.train_model = wrap_model(self.model, ctx, cfg.sync_bn)

    def _ema_tau(self, updates: int) -> float:
        """`cfg.ema_tau`, or when it is 0 (auto) the tau of a run of `updates` optimizer updates (the
        count `auto_iterations` gives the optimizer choice)."""
        if self.cfg.ema_tau:
            return self.cfg.ema_tau
        tau = auto_ema_tau(updates)
        if self.ctx.is_main:
            print(f"EMA tau auto: {tau:g} ({updates} optimizer updates in {self.cfg.epochs} epochs)")
        return tau

    def _build_model(self) -> nn.Module:
        if self.ckpt:  # the architecture the checkpoint was trained with, whatever cfg.model names now
            model = build_model_from_checkpoint(self.ckpt, self.resume_path)
            if model.nc != len(self.names):
                raise ConfigError(
                    f"{self.resume_path}: the checkpoint has {model.nc} classes but {self.cfg.data} has "
                    f"{len(self.names)}; resume with the data set the run was trained on"
                )
        else:
            model = build_model(self.cfg.model, nc=len(self.names))
        model.names = self.names
        if self.weights_source is not None:
            report = transfer_weights(model, self.weights_source)
            self.transfer_report = report
            if self.ctx.is_main:
                print(report.summary())
        return model

    def _build_criterion(self, model: nn.Module) -> nn.Module:
        if self.cfg.box_loss:
            kind, options = parse_box_loss_spec(self.cfg.box_loss)
        else:
            kind, options = default_box_loss(self.cfg.model)
        box = resolve_box_loss(kind, **options)
        self.similarity_scales = resolve_similarity_scales(
            self.cfg.assign_metric, self.cfg.nms_metric, box, self.cfg.similarity_scale,
            self.data.train_loader.dataset.records, self.cfg.imgsz, verbose=self.ctx.is_main,
            window=self.cfg.windows,
        )  # fmt: skip
        if self.similarity_scales.box_loss is not None:
            filled = box.params.with_data_scale(self.similarity_scales.box_loss)
            box = BoxLossConfig.from_options(box.kind, filled)
        return DetectionLoss.from_model(
            model, box_loss=box.kind, box_options=box.options(), assign_metric=self.cfg.assign_metric,
            assign_scale=self.similarity_scales.assign, assign_outside=self.cfg.assign_outside,
            assign_min_side=self.cfg.assign_min_side,
        )  # fmt: skip

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
        """Run (or resume) the whole schedule; returns the paths of the checkpoints and final metrics.

        Ctrl-C re-raises `KeyboardInterrupt` with a message naming the checkpoint to resume from.
        """
        try:
            return self._train()
        except KeyboardInterrupt as e:
            weights_dir = getattr(self, "weights_dir", None)
            last = weights_dir / "last.pt" if weights_dir is not None else None
            if last is not None and last.is_file():
                raise KeyboardInterrupt(f"training interrupted; resume with resume={last}") from e
            raise KeyboardInterrupt("training interrupted before the first checkpoint; start it again") from e
        finally:
            if self.lock is not None:
                self.lock.release()
            if self.threads_before is not None:  # the run's count does not outlive it
                torch.set_num_threads(self.threads_before)

    def _train(self) -> TrainResult:
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
            if ctx.is_main:
                self._start_logging()
            for epoch in range(self.start_epoch, cfg.epochs):
                if epoch >= cfg.epochs - cfg.close_mosaic:
                    close_mosaic(self.data)
                if ctx.is_main:
                    self.callbacks.run("on_train_epoch_start", self, epoch)
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
                    # without validation no epoch is known to be better: best.pt follows the latest
                    improved = fit > self.best_fitness or not self.validates
                    if improved:
                        self.best_fitness, self.best_epoch = fit, epoch
                    self._write_csv_row(epoch, losses, metrics, lrs, time.time() - t0)
                    self._save(epoch, metrics, improved)
                    self.callbacks.run("on_epoch_end", self, epoch_scalars(epoch, losses, lrs, metrics))
                    stop = self.validates and cfg.patience > 0 and epoch - self.best_epoch >= cfg.patience
                    if stop:
                        print(f"early stop: {cfg.patience} epochs without gain (best {self.best_epoch + 1})")
                if bool(broadcast_object(stop, ctx)):
                    break
            if cfg.record_seen:
                write_text_atomic(
                    self.save_dir / f"weights_rank{ctx.rank}.sha256", state_dict_hash(self.model) + "\n"
                )
            barrier(ctx)
            result = self._result(metrics, epoch + 1)
            if ctx.is_main:
                self.callbacks.run("on_train_end", self, result)
            return result
        finally:
            cleanup_distributed(ctx)

    def _train_one_epoch(self, epoch: int, nb: int) -> tuple[list[float], list[int]]:
        cfg, ctx = self.cfg, self.ctx
        loader = self.data.train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)  # shuffling, augmentation and DistributedSampler of this epoch
        self.train_model.train()
        keep_frozen_norms_eval(self.frozen_norms)
        mean_loss = torch.zeros(3)
        seen: list[int] = []
        last_step = -1
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(
            loader, total=nb, disable=not ctx.is_main, dynamic_ncols=True, desc=f"{epoch + 1}/{cfg.epochs}"
        )
        tick = time.perf_counter()
        for i, batch in enumerate(bar):
            ni = i + nb * epoch
            if i == 0 and epoch == self.start_epoch and ctx.is_main and cfg.plots:
                save_first_batch(self, batch)
            accumulate = accumulation_steps(ni, self.warmup_iters, cfg.nbs, cfg.batch)
            if ni < self.warmup_iters:
                apply_warmup(
                    self.optimizer,
                    ni,
                    self.warmup_iters,
                    self.lr_factor(epoch),
                    self.warmup_bias_lr,
                    cfg.warmup_momentum,
                    self.momentum,
                )
            imgs = batch["img"].to(ctx.device, non_blocking=True).float() / 255.0
            targets = {k: batch[k].to(ctx.device) for k in ("batch_idx", "cls", "bboxes")}
            if cfg.multi_scale:
                imgs, targets["bboxes"] = multi_scale_batch(
                    imgs, targets["bboxes"], cfg.imgsz, int(self.model.stride.max()), self.scale_rng
                )
            imgs = imgs.contiguous(memory_format=self.memory_format)
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
            if self.thread_tuner is not None:
                tock = time.perf_counter()
                if i > 0:  # the first batch of an epoch also waits for the loader workers to start
                    self.thread_tuner.step(tock - tick)
                tick = tock
            if ctx.is_main:
                bar.set_postfix(
                    box=f"{mean_loss[0]:.3f}",
                    cls=f"{mean_loss[1]:.3f}",
                    dfl=f"{mean_loss[2]:.3f}",
                    lr=f"{self.optimizer.param_groups[0]['lr']:.2e}",
                    inst=int(targets["cls"].numel()),
                    size=imgs.shape[-1],
                    **({"thr": self.thread_tuner.current} if self.thread_tuner else {}),
                )
        bar.close()
        if self.thread_tuner is not None and ctx.is_main:
            print(self.thread_tuner.describe())
        return mean_loss.tolist(), seen

    def _optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), max_norm=self.cfg.max_grad_norm, foreach=True
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    # ----------------------------------------------------------------------------------- outputs
    def _start_logging(self) -> None:
        """Label statistics image, TensorBoard, `on_train_start`; validate the initial weights once."""
        start_logging(self)
        if self.weights_source is not None and self.start_epoch == 0 and self.cfg.val:
            print("validation of the initial weights (epoch 0):")
            self.initial_metrics, _ = self._validate()
        self.callbacks.run("on_train_start", self)

    def _eval_model(self) -> nn.Module:
        return self.ema.ema if self.ema is not None else unwrap_model(self.model)

    @property
    def validates(self) -> bool:
        """Whether each epoch is scored (fitness, early stopping and best.pt mean something)."""
        return bool(self.cfg.val) and self.data.val_loader is not None

    def _validate(self) -> tuple[dict[str, float], float]:
        if not self.validates:
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
            nms_metric=self.cfg.nms_metric,
            nms_scale=self.similarity_scales.nms,
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
        with atomic_write(self.csv_path, "w", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(kept)

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
        # The whole file is rewritten atomically: a kill leaves the previous rows intact, never a torn one.
        old = self.csv_path.read_text(encoding="utf-8") if self.csv_path.is_file() else ""
        with atomic_write(self.csv_path, "w", encoding="utf-8") as f:
            f.write(old)
            writer = csv.writer(f, lineterminator="\n")
            if not old:
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
            "model": plain_state_dict(deploy),
            "train_model": plain_state_dict(model),
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
            "save_dir": str(self.save_dir.resolve()),  # resume writes here and nowhere else
        }

    def _save(self, epoch: int, metrics: dict[str, float], improved: bool) -> None:
        ckpt = self._checkpoint(epoch, metrics)
        save_checkpoint(self.weights_dir / "last.pt", ckpt)
        self.callbacks.run("on_model_save", self, self.weights_dir / "last.pt")
        if improved:
            save_checkpoint(self.weights_dir / "best.pt", ckpt)
            self.callbacks.run("on_model_save", self, self.weights_dir / "best.pt")
        if self.cfg.save_period > 0 and (epoch + 1) % self.cfg.save_period == 0:
            save_checkpoint(self.weights_dir / f"epoch{epoch + 1}.pt", ckpt)

    def _record_seen(self, epoch: int, seen: list[int]) -> None:
        path = self.save_dir / f"seen_rank{self.ctx.rank}_epoch{epoch + 1}.txt"
        write_text_atomic(path, "\n".join(str(i) for i in seen) + "\n")

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
            initial_metrics=self.initial_metrics,
        )


def train(
    config: TrainConfig | None = None, callbacks: Callbacks | dict | None = None, **overrides: Any
) -> TrainResult:
    """Python API: `train(TrainConfig(model="yolov8n", epochs=3))` or `train(model="yolov8n", epochs=3)`.

    `callbacks`: {event: function or list} or a `Callbacks` (events in `lrnet.training.callbacks`).
    """
    if config is None:
        config = TrainConfig(**overrides)
    elif overrides:
        config = TrainConfig.from_dict({**config.to_dict(), **overrides})
    if not math.isfinite(config.lr0) or config.lr0 <= 0:
        raise ConfigError(f"lr0={config.lr0} must be a positive number; the default is 0.01")
    return Trainer(config, callbacks).train()
