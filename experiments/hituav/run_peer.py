"""Train and score ultralytics' rows of the HIT-UAV table (experiments/REAL.md) in the peer environment.

    /path/to/peer-venv/bin/python experiments/hituav/run_peer.py [--rows 'ultralytics yolov8n-p2']
        [--seeds 0,1,2] [--split val|test] [--smoke] [--score-only] [--lrnet-python .venv/bin/python]

Imports only ultralytics, torch, numpy and the standard library (never lrnet). Each row is built
from its YAML (random initialisation, `pretrained=False`) and trained with the protocol's recipe given
explicitly (`protocol.RECIPE`, SGD, nbs 16, close_mosaic 3, amp off) on the YOLO view that prepare.py
wrote (the same 450 images; DontCare left out of the labels and greyed in the pixels, as lrnet's
training greys ignore regions). A run that wrote `done.json` is not trained again; one with
`weights/last.pt` and no `done.json` is resumed. Each finished run's `last.pt` then predicts the
images of `gt_<split>.json` at 320 px (letterboxed square, as lrnet predicts), conf 0.001, NMS IoU
0.7, at most 1,500 detections per image; the detections are written as COCO JSON with the ground
truth's image and category ids (`coco_detections`) and scored by `lrnet eval-json`, run in lrnet's
environment, into `scores/<split>.json`, the same file lrnet's runs get (`protocol.score_record`).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from experiments.hituav import protocol as P

PREDICT_BATCH = 16


class PeerError(Exception):
    """A problem this script reports as one line (exit code 2)."""


# -- COCO detections (pure; tested without ultralytics) --------------------------------------------
def coco_detections(
    per_image: Iterable[tuple[str, Sequence[Sequence[float]], Sequence[float], Sequence[float]]],
    image_ids: dict[str, int],
    category_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """COCO results of per-image detections `(file name, boxes xyxy in image pixels, scores, class
    indices)`: `image_id` from `image_ids` (by the file's base name), `category_id` the class index's
    entry of `category_ids`, `bbox` [x, y, w, h] rounded as lrnet's predictions are (3 decimals,
    scores 5)."""
    out: list[dict[str, Any]] = []
    for name, boxes, scores, classes in per_image:
        base = Path(name).name
        if base not in image_ids:
            raise PeerError(f"{name}: no image of the ground truth is named {base}; predict its images only")
        if not (len(boxes) == len(scores) == len(classes)):
            raise PeerError(f"{name}: {len(boxes)} boxes, {len(scores)} scores, {len(classes)} classes")
        for (x1, y1, x2, y2), score, cls in zip(boxes, scores, classes):
            k = int(cls)
            if not 0 <= k < len(category_ids):
                raise PeerError(f"{name}: class index {k} outside the {len(category_ids)} categories")
            out.append(
                {
                    "image_id": int(image_ids[base]),
                    "category_id": int(category_ids[k]),
                    "bbox": [
                        round(float(x1), 3),
                        round(float(y1), 3),
                        round(float(x2) - float(x1), 3),
                        round(float(y2) - float(y1), 3),
                    ],
                    "score": round(float(score), 5),
                }
            )
    return out


def ground_truth_index(
    gt: dict[str, Any], gt_path: Path
) -> tuple[list[Path], dict[str, int], list[int], list[str]]:
    """(image paths, base name -> image id, category ids sorted, their names) of a COCO ground truth
    whose file names are relative to `gt_path`'s folder."""
    images = [gt_path.parent / im["file_name"] for im in gt["images"]]
    ids = {Path(im["file_name"]).name: int(im["id"]) for im in gt["images"]}
    if len(ids) != len(images):
        raise PeerError(f"{gt_path}: two images share a file name; ids cannot be mapped by name")
    cats = sorted(gt["categories"], key=lambda c: int(c["id"]))
    return images, ids, [int(c["id"]) for c in cats], [str(c["name"]) for c in cats]


# -- training ------------------------------------------------------------------------------------
def train_args(row: P.PeerRow, seed: int, smoke: bool, layout: P.Layout, workers: int, device: str) -> dict:
    """ultralytics' `train()` arguments: the protocol's recipe, every value given explicitly."""
    return {
        "data": str(layout.yolo_smoke_yaml if smoke else layout.yolo_yaml),
        "epochs": P.SMOKE_EPOCHS if smoke else P.EPOCHS,
        **row.recipe(),
        "optimizer": P.OPTIMIZER.upper(),  # not "auto", which would pick AdamW for short runs
        **P.LOSS_GAINS,
        "cutmix": 0.0,
        "bgr": 0.0,
        "seed": seed,
        "deterministic": True,
        "workers": workers,
        "device": device,
        "amp": False,
        "pretrained": False,
        "val": True,  # per-epoch validation for the AP50 curve (ultralytics' own validator)
        "patience": 0,  # no early stop (ultralytics reads 0 as never)
        "cache": False,
        "rect": False,
        "multi_scale": 0.0,
        "single_cls": False,
        "fraction": 1.0,
        "freeze": None,
        "max_det": P.SCORING["max_det"],
        "iou": P.SCORING["iou"],
        "plots": False,
        "save_period": -1,
        "verbose": True,
        "exist_ok": True,
    }


def _setup_ultralytics(runs: Path, threads: int) -> None:
    """Offline, settings kept beside the runs, `threads` torch threads (0: the CPUs of this process,
    as lrnet chooses on fewer than 4 cores)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(runs / ".ultralytics"))
    import torch

    torch.set_num_threads(threads or max(len(os.sched_getaffinity(0)), 1))


def check_ema_defaults() -> None:
    """ultralytics' weight average must be the protocol's (`P.EMA`): it has no train() argument, so a
    changed default would change every peer run silently."""
    from ultralytics.utils.torch_utils import ModelEMA

    params = inspect.signature(ModelEMA.__init__).parameters
    found = {k: float(params[k].default) for k in P.EMA}
    if found != P.EMA:
        raise PeerError(f"ultralytics' ModelEMA defaults are {found}, the protocol's {P.EMA}")


def ema_decay(updates: int, tau: float) -> float:
    """The protocol's EMA decay after `updates` optimizer steps with warm-up constant `tau`."""
    return P.EMA["decay"] * (1.0 - math.exp(-updates / tau))


def ema_tau_callback(tau: float) -> Callable[[Any], None]:
    """An ultralytics trainer callback that gives the trainer's EMA the warm-up constant `tau`."""

    def set_tau(trainer: Any) -> None:
        if trainer.ema is not None:
            trainer.ema.decay = functools.partial(ema_decay, tau=tau)

    return set_tau


def train_run(row: P.PeerRow, seed: int, run: Path, args: dict[str, Any]) -> None:
    """Train (or resume) one run; `done.json` and `model.json` (params, GFLOPs at 640) when finished."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    check_ema_defaults()
    last = run / "weights" / "last.pt"
    resume = last.is_file()  # killed before done.json: ultralytics resumes from its own saved arguments
    yolo = YOLO(str(last) if resume else row.cfg)
    if row.ema_tau != P.EMA["tau"]:
        # the trainer builds its EMA (again when resuming, again after a NaN recovery) before these
        for event in ("on_pretrain_routine_end", "on_train_epoch_start"):
            yolo.add_callback(event, ema_tau_callback(row.ema_tau))
    t0 = time.perf_counter()
    if resume:
        yolo.train(resume=True)
    else:
        yolo.train(**args, project=str(run.parent), name=run.name)
    seconds = time.perf_counter() - t0
    model = YOLO(str(last)).model
    P.write_json_atomic(
        run / "model.json",
        {"cfg": row.cfg, "params": int(get_num_params(model)), "gflops_640": round(get_flops(model, 640), 3)},
    )
    P.write_json_atomic(run / "done.json", {"row": row.name, "seed": seed, "seconds": round(seconds, 1)})


# -- scoring ---------------------------------------------------------------------------------------
def predict_split(weights: Path, images: list[Path], device: str) -> tuple[list[tuple], dict[int, str]]:
    """Detections `(path, boxes xyxy, scores, classes)` of every image with ultralytics' predictor at
    the protocol's settings, and the model's class names."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    out = []
    for i in range(0, len(images), PREDICT_BATCH):
        chunk = [str(p) for p in images[i : i + PREDICT_BATCH]]
        results = model.predict(
            source=chunk, imgsz=P.SCORING["imgsz"], conf=P.SCORING["conf"], iou=P.SCORING["iou"],
            max_det=P.SCORING["max_det"], rect=False, augment=False, agnostic_nms=False,
            device=device, batch=PREDICT_BATCH, verbose=False, save=False,
        )  # fmt: skip
        for path, r in zip(chunk, results):
            b = r.boxes
            out.append((path, b.xyxy.cpu().tolist(), b.conf.cpu().tolist(), b.cls.cpu().tolist()))
    return out, model.names


def lrnet_python(given: str) -> str:
    """The Python of lrnet's environment: `given`, else $LRNET_PYTHON, else <repo>/.venv/bin/python."""
    for cand in (given, os.environ.get("LRNET_PYTHON", ""), str(P.REPO_ROOT / ".venv" / "bin" / "python")):
        if cand and Path(cand).is_file():
            return cand
    raise PeerError(
        "no Python of lrnet's environment to run `lrnet eval-json` with: give --lrnet-python or set "
        "LRNET_PYTHON (the predictions are kept; rerun with --score-only)"
    )


def eval_json(python: str, gt: Path, dt: Path) -> tuple[dict[str, Any], str]:
    """`lrnet eval-json GT DT` (`protocol.eval_json_args`) in lrnet's environment, this checkout's lrnet
    first on the path; returns its metrics and the command line."""
    cmd = [
        python,
        "-c",
        "import sys; from lrnet.cli import main; sys.exit(main())",
        *P.eval_json_args(gt, dt),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(P.REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=P.REPO_ROOT)  # paths as shown
    if proc.returncode != 0:
        raise PeerError(f"lrnet eval-json failed ({proc.returncode}): {proc.stderr.strip()}")
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    metrics.pop("protocol", None)
    return metrics, shlex.join(["lrnet", *P.eval_json_args(gt, dt)])


def score_run(
    row: P.PeerRow, seed: int, run: Path, split: str, layout: P.Layout, device: str, python: str, smoke: bool
) -> dict[str, Any]:
    """Predict the split's ground-truth images with last.pt, write COCO detections, score them with
    `lrnet eval-json`, write `scores/<split>.json`."""
    weights = run / "weights" / "last.pt"
    gt_path = layout.gt(split, smoke)
    for path, what in ((weights, "the run's last.pt"), (gt_path, "the ground truth (run prepare.py)")):
        if not path.is_file():
            raise PeerError(f"{path} does not exist: {what} is needed to score the run")
    gt = json.loads(gt_path.read_text(encoding="utf-8"))
    images, image_ids, category_ids, cat_names = ground_truth_index(gt, gt_path)
    t0 = time.perf_counter()
    per_image, names = predict_split(weights, images, device)
    seconds = time.perf_counter() - t0
    model_names = [names[k] for k in sorted(names)]
    if model_names != cat_names:
        raise PeerError(f"{weights}: classes {model_names} are not the ground truth's {cat_names}")
    dt = P.score_dir(run, split) / "predictions.json"
    P.write_json_atomic(dt, coco_detections(per_image, image_ids, category_ids))
    metrics, score_cmd = eval_json(python, gt_path, dt)
    predict_cmd = (
        f"YOLO({P.shown(weights)!r}).predict(<the images of {P.shown(gt_path)}>, imgsz={P.SCORING['imgsz']}, "
        f"conf={P.SCORING['conf']}, iou={P.SCORING['iou']}, max_det={P.SCORING['max_det']}, rect=False)"
    )
    record = P.score_record(
        row=row.name, trainer="ultralytics", seed=seed, split=split, weights=weights, gt=gt_path,
        predictions=dt, metrics=metrics, images=len(images), predict_seconds=seconds,
        commands={"predict": predict_cmd, "score": score_cmd},
    )  # fmt: skip
    P.write_json_atomic(P.score_file(run, split), record)
    return record


# -- command line ---------------------------------------------------------------------------------
def select_rows(names: str) -> list[P.PeerRow]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return list(P.PEER_ROWS)
    known = {r.name: r for r in P.PEER_ROWS} | {r.folder: r for r in P.PEER_ROWS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise PeerError(f"no ultralytics row named {unknown}; choose from {[r.name for r in P.PEER_ROWS]}")
    chosen = {known[n].name for n in wanted}
    return [r for r in P.PEER_ROWS if r.name in chosen]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise PeerError(f"seeds={text!r} is not a comma-separated list of integers; e.g. 0,1,2") from None
    if not seeds:
        raise PeerError(f"seeds={text!r} names no seed; e.g. 0,1,2")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_peer.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="", help="comma-separated rows by name or folder ('' = both)")
    p.add_argument("--seeds", default=",".join(map(str, P.SEEDS)), help="comma-separated seeds")
    p.add_argument("--split", default="val", choices=P.SPLITS, help="split to score (test: final table)")
    p.add_argument(
        "--smoke", action="store_true", help="1 epoch on the 16-image list, under runs/hituav-smoke"
    )
    p.add_argument("--data", default=str(P.REPO_ROOT / "data" / "hituav"), help="the folder prepare.py wrote")
    p.add_argument("--runs", default="", help="parent folder of the runs ('' = runs/hituav[-smoke])")
    p.add_argument("--score-only", action="store_true", help="train nothing; score finished runs")
    p.add_argument(
        "--rescore",
        action="store_true",
        help="score again runs already scored on the split (a run kept only in the records is trained again)",
    )
    p.add_argument("--device", default="cpu", help="cpu or a CUDA device index")
    p.add_argument("--workers", type=int, default=1, help="data-loader workers")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the CPUs of this process)")
    p.add_argument("--lrnet-python", default="", help="Python of lrnet's environment, for lrnet eval-json")
    p.add_argument("--records", default="", help=P.RECORDS_HELP)
    return p


def run_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    layout = P.Layout(Path(args.data).resolve())
    if not layout.stamp.is_file():
        raise PeerError(f"{layout.stamp} does not exist; run experiments/hituav/prepare.py first")
    runs = Path(args.runs).resolve() if args.runs else P.default_runs(args.smoke)
    rows, seeds = select_rows(args.rows), parse_seeds(args.seeds)
    python = lrnet_python(args.lrnet_python)  # fail before hours of training, not after
    _setup_ultralytics(runs, args.threads)
    records = P.records_root(args.records, args.runs, args.smoke)
    done = []
    for seed in seeds:
        for row in rows:
            run = P.run_dir(runs, row.folder, seed)
            kept = P.kept_elsewhere(run, records, row.folder, seed, args.split, args.rescore)
            if kept:
                status = kept
                print(f"{row.name} seed {seed}: {status}")
                done.append({"row": row.name, "seed": seed, "run": str(run), "status": status})
                continue
            if not args.score_only and not (run / "done.json").is_file():
                train_run(
                    row, seed, run, train_args(row, seed, args.smoke, layout, args.workers, args.device)
                )
            if not (run / "done.json").is_file():
                status = "not trained"
            elif P.score_file(run, args.split).is_file() and not args.rescore:
                status = "already scored"
            else:
                record = score_run(row, seed, run, args.split, layout, args.device, python, args.smoke)
                status = P.scored_status(args.split, record["metrics"])
            if records is not None and P.score_file(run, args.split).is_file():
                P.keep_record(run, records, row.folder, seed)
            print(f"{row.name} seed {seed}: {status} ({run})")
            done.append({"row": row.name, "seed": seed, "run": str(run), "status": status})
    return done


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_rows(args)
    except PeerError as e:
        print(f"run_peer.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
