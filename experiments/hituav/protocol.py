"""The HIT-UAV protocol of experiments/REAL.md as data, shared by every script of this folder.

Standard library only: `run_peer.py` imports it in the peer (ultralytics) environment, which has no
lrnet. Both trainers read their recipe, the lists, the scoring settings and the file layout from
here, so that a number of the protocol is written once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

# -- data ----------------------------------------------------------------------------------------
DATASET_REPO = "suojiashun/HIT-UAV-Infrared-Thermal-Dataset"
DATASET_URL = f"https://github.com/{DATASET_REPO}"
DATASET_COMMIT = "f8100db7"
DEFAULT_MIRROR = "/work/.mirror/suojiashun+HIT-UAV-Infrared-Thermal-Dataset/repo"
VOC_FOLDER = "normal_xml"  # the Pascal VOC form of the set inside the repository
NAMES = ("Person", "Car", "Bicycle", "OtherVehicle", "DontCare")  # class order of the data YAMLs
IGNORE_CLASSES = ("DontCare",)  # ignore regions, not a class (the data YAML's `ignore_classes`)
CLASSES = tuple(n for n in NAMES if n not in IGNORE_CLASSES)  # the four detected classes, in order
OFFICIAL_COUNTS = {"train": 2029, "val": 290, "test": 579}  # images of the official lists
IMAGES_TOTAL = 2898

SUBSET_SIZE = 450  # training images of the CPU protocol
SUBSET_SEED = 0  # random.Random(SUBSET_SEED).sample(sorted(train ids), SUBSET_SIZE)
SMOKE_SIZE = 16  # the smoke run trains on the first SMOKE_SIZE images of the subset and scores the
# first SMOKE_SIZE of the val (test) list: it proves the pipeline, its numbers mean nothing
SEEDS = (0, 1, 2)
SPLITS = ("val", "test")  # scored splits: val for development, test for the final table only

# -- the one recipe (YOLOv8's defaults where they exist; REAL.md, "CPU protocol") ------------------
EPOCHS = 15
SMOKE_EPOCHS = 1
OPTIMIZER = "sgd"
RECIPE: dict[str, Any] = {
    "imgsz": 320,
    "batch": 16,
    "lr0": 0.01,
    "lrf": 0.01,
    "cos_lr": False,
    "momentum": 0.937,
    "weight_decay": 5e-4,
    "warmup_epochs": 3.0,
    "warmup_momentum": 0.8,
    "warmup_bias_lr": 0.1,
    "nbs": 16,
    "close_mosaic": 3,
    "mosaic": 1.0,
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "degrees": 0.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "perspective": 0.0,
    "flipud": 0.0,
    "fliplr": 0.5,
    "mixup": 0.0,
    "copy_paste": 0.0,
}
# Both trainers' weight average: decay(updates) = decay * (1 - exp(-updates / tau)), YOLOv8's values.
# Not an ultralytics train() argument: run_peer checks its default and sets a row's tau by callback.
EMA = {"decay": 0.9999, "tau": 2000.0}
TRAINER_OPTIONS = ("ema_tau",)  # row options besides RECIPE's keys
LOSS_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5}
ASSIGNER = {"topk": 10, "alpha": 0.5, "beta": 6.0}

# -- the one evaluator ---------------------------------------------------------------------------
SCORING = {"imgsz": 320, "conf": 0.001, "iou": 0.7, "max_det": 1500}
PROTOCOL = "aitod"  # lrnet eval-json's size bins (AP, AP50, AP75, APvt, APt, APs, APm)
METRICS = ("AP", "AP50", "AP75", "APvt", "APt", "APs", "APm")


def eval_json_args(gt: str | Path, dt: str | Path) -> list[str]:
    """`lrnet eval-json`'s arguments that score detections `dt` against `gt` (both trainers' runs)."""
    return ["eval-json", shown(gt), shown(dt), "--protocol", PROTOCOL, "--json", "--per-class"]


@dataclass(frozen=True)
class PeerRow:
    """An ultralytics row: its name in the table, the model YAML ultralytics builds it from (random
    initialisation), the row its paired deltas are taken against ('' = none), and the `RECIPE`
    values it changes (`options`, each a key of `RECIPE` or of `TRAINER_OPTIONS`)."""

    name: str
    cfg: str
    ref: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        unknown = [k for k, _ in self.options if k not in RECIPE and k not in TRAINER_OPTIONS]
        if unknown:
            raise ValueError(
                f"row {self.name!r}: options {unknown} are not recipe keys {sorted(RECIPE)} "
                f"nor trainer options {list(TRAINER_OPTIONS)}"
            )

    @property
    def folder(self) -> str:
        return run_folder_name(self.name)

    def recipe(self) -> dict[str, Any]:
        """`RECIPE` with this row's recipe options applied (ultralytics' train() arguments)."""
        return {**RECIPE, **{k: v for k, v in self.options if k in RECIPE}}

    @property
    def ema_tau(self) -> float:
        """The EMA's tau of this row's runs (`EMA`'s unless the row changes it)."""
        return float(dict(self.options).get("ema_tau", EMA["tau"]))


PEER_ROWS = (
    PeerRow("ultralytics yolov8n", "yolov8n.yaml"),
    PeerRow("ultralytics yolov8n-p2", "yolov8n-p2.yaml", ref="ultralytics yolov8n"),
    PeerRow(
        "ultralytics yolov8n-p2 scale 0.25",
        "yolov8n-p2.yaml",
        ref="ultralytics yolov8n-p2",
        options=(("scale", 0.25),),
        note="added 2026-12-03 after lrnet-n scale 0.25's screening run: the same recipe change on the "
        "peer, so that a gain of the recipe is not credited to the model",
    ),
    PeerRow(
        "ultralytics yolov8n-p2 EMA tau 100",
        "yolov8n-p2.yaml",
        ref="ultralytics yolov8n-p2",
        options=(("ema_tau", 100.0),),
        note="added 2026-12-04 after lrnet-n EMA tau 100's screening run: the same change on the peer",
    ),
)


def run_folder_name(name: str) -> str:
    """Folder of a row's runs: the name with '+' as 'plus-', '*' as '-star', other unsafe characters
    as '_' (the rule of `lrnet.experiments.ablation.slug`, so both trainers' rows sit side by side)."""
    out = name.replace("+", "plus-").replace("*", "-star")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in out).strip("_")


@dataclass(frozen=True)
class Layout:
    """Where `prepare.py` writes the data set and everything derived from it, under `root`."""

    root: Path

    @property
    def voc(self) -> Path:
        return self.root / VOC_FOLDER

    def list_file(self, name: str) -> Path:
        return self.voc / "ImageSets" / "Main" / f"{name}.txt"

    @property
    def data_yaml(self) -> Path:
        """lrnet: train = the subset, val = the official val list (development)."""
        return self.root / "hituav.yaml"

    @property
    def smoke_yaml(self) -> Path:
        return self.root / "hituav_smoke.yaml"

    @property
    def test_yaml(self) -> Path:
        """lrnet: test = the official test list, alone (the final table only)."""
        return self.root / "hituav_test.yaml"

    def scored_yaml(self, split: str, smoke: bool = False) -> Path:
        """The data YAML holding scored split `split`: development reads only val (`data_yaml`), test
        has a YAML of its own; the smoke YAML holds the smoke lists of both."""
        if smoke:
            return self.smoke_yaml
        return self.data_yaml if split == "val" else self.test_yaml

    def gt(self, split: str, smoke: bool = False) -> Path:
        """COCO ground truth of a scored split (DontCare as iscrowd ignore regions)."""
        return self.root / (f"gt_smoke_{split}.json" if smoke else f"gt_{split}.json")

    @property
    def yolo(self) -> Path:
        """The YOLO-format view ultralytics trains on."""
        return self.root / "yolo"

    @property
    def yolo_yaml(self) -> Path:
        return self.yolo / "hituav.yaml"

    @property
    def yolo_smoke_yaml(self) -> Path:
        return self.yolo / "hituav_smoke.yaml"

    @property
    def tiles(self) -> Path:
        """Native-resolution tiles of the subset (the tiles row)."""
        return self.root / "tiles320"

    @property
    def tiles_yaml(self) -> Path:
        return self.tiles / "data.yaml"

    @property
    def stamp(self) -> Path:
        return self.root / "prepared.json"


def subset_list_name(size: int = SUBSET_SIZE) -> str:
    return f"train{size}"


def smoke_list_name(size: int = SMOKE_SIZE, split: str = "train") -> str:
    """The smoke lists: `smoke16` (train), `smoke_val16`, `smoke_test16`."""
    return f"smoke{size}" if split == "train" else f"smoke_{split}{size}"


def default_runs(smoke: bool) -> Path:
    """Parent folder of the rows' run folders; the smoke runs never mix with the table's."""
    return REPO_ROOT / "runs" / ("hituav-smoke" if smoke else "hituav")


# The small files of a finished run that the report reads, kept in the repository (the run folders
# under runs/ are not: checkpoints and predictions are large, and a machine's runs/ does not outlive it).
RECORDS_ROOT = REPO_ROOT / "experiments" / "hituav" / "records"
RECORD_FILES = ("done.json", "model.json", "results.csv", "args.yaml")


RECORDS_HELP = (
    "folder the scored runs' small record files are copied to ('' = experiments/hituav/records for "
    "the table's own runs; nothing for --smoke or --runs unless given)"
)


def records_root(records: str, runs: str, smoke: bool) -> Path | None:
    """Where a run script keeps records: `records` when given, else the repository's records folder
    for the table's own runs (default `runs`, not smoke), else nowhere."""
    if records:
        return Path(records)
    return None if (smoke or runs) else RECORDS_ROOT


def kept_elsewhere(run: Path, records: Path | None, folder: str, seed: int, split: str, rescore: bool) -> str:
    """Why a run is skipped, or "" to train and score it. A run trained on another machine (its
    record in `records`, its run folder `run` absent here) is not trained again unless `rescore`:
    when the record holds this split's score there is nothing to do; when it holds only other
    splits', this split cannot be scored without the lost last.pt, and training again would make a
    different run than the one recorded."""
    if records is None or rescore or (Path(run) / "done.json").is_file():
        return ""
    kept = run_dir(records, folder, seed)
    path = score_file(kept, split)
    if path.is_file():
        return f"kept in {shown(path)} (trained elsewhere; --rescore trains it again)"
    others = sorted(p.stem for p in (kept / "scores").glob("*.json"))
    if others:
        return (
            f"trained elsewhere ({shown(kept)} holds its {', '.join(others)} score, not {split}) and its "
            f"last.pt is not here: not scored; --rescore trains it again and replaces the record"
        )
    return ""


def keep_record(run: Path, records: Path, folder: str, seed: int) -> Path:
    """Copy the record of a scored run (`RECORD_FILES` that exist and every `scores/<split>.json`) to
    `records/<folder>/seed<seed>/`, each file atomically; report.py reads the table from there. A
    score in the record that the run folder lacks belongs to an earlier training of the run
    (`--rescore`) and is removed, so that a record never mixes two trainings."""
    run, dest = Path(run), run_dir(records, folder, seed)
    names = [n for n in RECORD_FILES if (run / n).is_file()]
    names += [f"scores/{p.name}" for p in sorted((run / "scores").glob("*.json"))]
    for name in names:
        write_bytes_atomic(dest / name, (run / name).read_bytes())
    for stale in (dest / "scores").glob("*.json"):
        if not (run / "scores" / stale.name).is_file():
            stale.unlink()
    return dest


def run_dir(runs: Path, folder: str, seed: int) -> Path:
    return Path(runs) / folder / f"seed{seed}"


def score_dir(run: Path, split: str) -> Path:
    """Folder of a run's predictions of `split` (predictions.json)."""
    return Path(run) / "scores" / split


def score_file(run: Path, split: str) -> Path:
    """The metrics JSON of a run on `split` (`score_record`)."""
    return Path(run) / "scores" / f"{split}.json"


def scored_status(split: str, metrics: dict[str, Any]) -> str:
    """What a run script prints after scoring: the val AP; for test only that it is sealed (REAL.md's
    amendment: test scores are read by `report.py --split test` for the final table, not from logs)."""
    if split == "test":
        return "scored (sealed: report.py --split test reads it)"
    return f"scored: AP {100 * metrics['AP']:.2f}"


def score_record(
    *,
    row: str,
    trainer: str,
    seed: int,
    split: str,
    weights: str | Path,
    gt: str | Path,
    predictions: str | Path,
    metrics: dict[str, Any],
    commands: dict[str, str],
    images: int,
    predict_seconds: float,
) -> dict[str, Any]:
    """The metrics JSON of one run on one split, the same for both trainers (report.py reads it)."""
    return {
        "row": row,
        "trainer": trainer,
        "seed": int(seed),
        "split": split,
        "protocol": PROTOCOL,
        "scoring": dict(SCORING),
        "weights": shown(weights),
        "gt": shown(gt),
        "predictions": shown(predictions),
        "images": int(images),
        "predict_seconds": round(float(predict_seconds), 3),
        "metrics": {k: v for k, v in metrics.items() if k != "per_class"},
        "per_class": metrics.get("per_class"),
        "commands": dict(commands),
    }


def shown(path: str | Path) -> str:
    """`path` relative to the repository when it lies inside it, so that recorded commands read the
    same on any machine; any other path as given."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` through a temporary file in the same folder, renamed over `path` when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (`write_bytes_atomic`).

    For the peer environment, which cannot import `lrnet.fileio` (the lrnet-side scripts use that)."""
    return write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
