"""Regenerate the Results of experiments/REAL.md from the run folders (never by hand); lrnet's environment.

    python experiments/hituav/report.py [--split val|test] [--seeds 0,1,2] [--smoke] [--runs DIR]

Reads every row's `seed<k>/scores/<split>.json` (written by run_lrnet.py and run_peer.py, the same
schema; by default from the records those scripts keep in experiments/hituav/records, so the table
regenerates on any clone), the runs' `results.csv` (AP50 per epoch, epoch times) and writes, between
the markers `<!-- hituav-report:<split>:begin -->` and `... end -->` of the Markdown file (appended
when absent):
- per row: mean ± sample std over the seeds, params and GFLOPs at 640 px, the seeds it has;
- paired (same-seed) deltas to the row's reference, mean ± std, with the protocol's rule: a difference
  counts only when its mean exceeds both its own std and the larger seed std of the two rows;
- the AP50-per-epoch curves (mean and min-max band over seeds, each trainer's own validator);
- the command behind every number; rows or seeds without a score are listed as missing.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from experiments.hituav import protocol as P
from experiments.hituav.run_lrnet import ROWS
from experiments.hituav.script import run_script
from lrnet.errors import DataError
from lrnet.experiments.ablation import (
    RunSummary,
    Variant,
    VariantResult,
    mean_std,
    parse_seeds,
    plot_ap50_curves,
)
from lrnet.fileio import write_text_atomic
from lrnet.nn import build_model
from lrnet.nn.summary import model_info
from lrnet.schema import Choice, option
from lrnet.training.plots import read_results_csv

# Pairs compared besides each row's own reference: what issue #22 must show, and both models under
# the recipe change that won on val (scale 0.25), so that the model's part of it shows apart.
EXTRA_PAIRS = (
    ("lrnet-n", "ultralytics yolov8n-p2"),
    ("lrnet-n", "ultralytics yolov8n"),
    ("lrnet-n scale 0.25", "ultralytics yolov8n-p2 scale 0.25"),
    ("lrnet-n EMA tau 100", "ultralytics yolov8n-p2 EMA tau 100"),
    ("lrnet-n EMA tau 100", "ultralytics yolov8n-p2"),  # lrnet's new default against the peer's
    ("lrnet-n EMA tau 100", "ultralytics yolov8n"),
    ("lrnet yolov8n min side 16", "ultralytics yolov8n"),  # trainer parity with the peer's assigner rule
    ("lrnet-n defaults", "ultralytics yolov8n-p2"),  # issue #22's must-show: lrnet-n's defaults ...
    ("lrnet-n defaults", "ultralytics yolov8n"),  # ... against the peer as it ships
    ("lrnet-n defaults", "lrnet-n EMA tau 100"),
    ("lrnet yolov8n-p2 defaults", "lrnet-n defaults"),  # the cheaper variant against lrnet-n's defaults
    ("lrnet yolov8n-p2 defaults", "ultralytics yolov8n-p2"),
)
DELTA_METRICS = ("AP", "AP50", "APt", "APs")  # the paired table's columns; the verdict reads AP and APt
VERDICT_METRICS = ("AP", "APt")
CURVE_COLUMNS = {"lrnet": "metrics/AP50", "ultralytics": "metrics/mAP50(B)"}


@dataclass
class RowSpec:
    """One row of the table, either trainer's."""

    name: str
    trainer: str  # "lrnet" or "ultralytics"
    model: str
    setting: str  # box loss and options, as the table shows them
    folder: str
    ref: str = ""
    note: str = ""


@dataclass
class RunScore:
    """One run's score on the split, its AP50 curve and its epoch times."""

    seed: int
    metrics: dict[str, float]
    record: dict[str, Any]
    curve: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


def peer_setting(row: P.PeerRow) -> str:
    """The setting column of an ultralytics row: its loss and the recipe values it changes."""
    return ", ".join(["CIoU (ultralytics)", *(f"{k}={v}" for k, v in row.options)])


def table_rows() -> list[RowSpec]:
    """The protocol's rows in table order: ultralytics' protocol rows, lrnet's (`run_lrnet.ROWS`),
    then ultralytics' experiments (rows that change the recipe)."""
    peer = [
        RowSpec(r.name, "ultralytics", r.cfg.removesuffix(".yaml"), peer_setting(r), r.folder, r.ref, r.note)
        for r in P.PEER_ROWS
    ]
    lrnet = [
        RowSpec(r.name, "lrnet", r.variant.model, r.variant.describe_loss(), r.folder, r.ref, r.note)
        for r in ROWS
    ]
    plain = [s for s, r in zip(peer, P.PEER_ROWS, strict=True) if not r.options]
    return plain + lrnet + [s for s in peer if s not in plain]


# -- the maths -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedDelta:
    """Same-seed differences row - reference of one metric, in points (%): their mean and sample std,
    and the sample std over the same seeds of each row."""

    seeds: tuple[int, ...]
    mean: float
    std: float
    row_std: float
    ref_std: float

    @property
    def counts(self) -> bool | None:
        """The protocol's rule: |mean| > its std and > the larger seed std of the two rows; None
        when fewer than two seeds give no spread to compare with."""
        if len(self.seeds) < 2:
            return None
        return abs(self.mean) > self.std and abs(self.mean) > max(self.row_std, self.ref_std)


def paired_delta(row: dict[int, float], ref: dict[int, float]) -> PairedDelta | None:
    """`PairedDelta` of per-seed values (fractions, as scored) over the seeds both have; None when
    they share none, or when a value is negative (no ground truth in that size bin)."""
    seeds = tuple(sorted(set(row) & set(ref)))
    if not seeds or any(row[s] < 0 or ref[s] < 0 for s in seeds):
        return None
    deltas = [100 * (row[s] - ref[s]) for s in seeds]
    mean, std = mean_std(deltas)
    return PairedDelta(
        seeds,
        mean,
        std,
        mean_std([100 * row[s] for s in seeds])[1],
        mean_std([100 * ref[s] for s in seeds])[1],
    )


def verdict(deltas: dict[str, PairedDelta | None]) -> str:
    """One line on the metrics of `VERDICT_METRICS`: which differences count, or none."""
    parts = []
    for key in VERDICT_METRICS:
        d = deltas.get(key)
        if d is None or d.counts is None:
            parts.append(f"{key}: needs 2+ paired seeds")
        elif d.counts:
            parts.append(f"{key}: {'ahead' if d.mean > 0 else 'behind'} ({d.mean:+.2f})")
    if not parts:
        return "not distinguishable at this budget"
    return "; ".join(parts)


# -- reading the runs ------------------------------------------------------------------------------
def read_curve(run: Path, trainer: str) -> tuple[list[float], list[float]]:
    """(AP50 per epoch as fractions, seconds per epoch) from a run's results.csv ([] without one).
    lrnet's `time` is per epoch; ultralytics' is cumulative. Epochs without validation are left out
    of the curve."""
    path = run / "results.csv"
    if not path.is_file():
        return [], []
    header, data = read_results_csv(path)
    rows = [dict(zip(header, r)) for r in data]
    col = CURVE_COLUMNS[trainer]
    curve = [r[col] for r in rows if col in r and r[col] >= 0]
    times = [r["time"] for r in rows if "time" in r]
    if trainer == "ultralytics":
        times = [t - (times[i - 1] if i else 0.0) for i, t in enumerate(times)]
    return curve, times


def load_runs(runs: Path, spec: RowSpec, split: str, seeds: list[int]) -> tuple[list[RunScore], list[int]]:
    """The scored runs of a row (by seed) and the seeds that have no score of `split`."""
    found, missing = [], []
    for seed in seeds:
        run = P.run_dir(runs, spec.folder, seed)
        path = P.score_file(run, split)
        if not path.is_file():
            missing.append(seed)
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        curve, times = read_curve(run, spec.trainer)
        found.append(RunScore(seed, record["metrics"], record, curve, times))
    return found, missing


def model_size(
    spec: RowSpec, runs: list[RunScore], root: Path, cache: dict[str, dict] | None = None
) -> tuple[float, float, str]:
    """(params in M, GFLOPs at 640, how counted) for the 4-class model of the row: lrnet's counter
    on lrnet's config (counted once per model in `cache`); ultralytics' own count (`model.json` of a
    run) for its rows."""
    if spec.trainer == "lrnet":
        cache = {} if cache is None else cache
        if spec.model not in cache:
            cache[spec.model] = model_info(build_model(spec.model, nc=len(P.CLASSES)), imgsz=640)
        info = cache[spec.model]
        return info["params"] / 1e6, float(info["gflops"]), "lrnet"
    for run in runs:
        path = P.run_dir(root, spec.folder, run.seed) / "model.json"
        if path.is_file():
            m = json.loads(path.read_text(encoding="utf-8"))
            return m["params"] / 1e6, float(m["gflops_640"]), "ultralytics"
    return math.nan, math.nan, "unknown"


# -- writing ---------------------------------------------------------------------------------------
def _cell(values: list[float]) -> str:
    if not values:
        return "missing"
    if any(v < 0 for v in values):
        return "n/a"
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def _delta_cell(d: PairedDelta | None) -> str:
    if d is None:
        return "n/a"
    text = f"{d.mean:+.2f} ± {d.std:.2f}"
    return f"**{text}**" if d.counts else text


def format_results(
    rows: list[tuple[RowSpec, list[RunScore], list[int], tuple]], split: str, seeds: list[int]
) -> str:
    """The main table, then the paired deltas."""
    head = ["Row", "Trainer", "Model", "Box loss / options", "Params (M)", "GFLOPs @640", "Seeds", *P.METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec, runs, _, (params, gflops, _) in rows:
        size = [
            f"{params:.3f}" if params == params else "n/a",
            f"{gflops:.1f}" if gflops == gflops else "n/a",
        ]
        seeds_cell = ",".join(str(r.seed) for r in runs) or "none"
        cells = [spec.name, spec.trainer, spec.model, spec.setting, *size, seeds_cell]
        cells += [_cell([r.metrics.get(k, math.nan) for r in runs]) for k in P.METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {spec.name}: {spec.note}." for spec, _, _, _ in rows if spec.note]
    if notes:
        lines += ["", "Notes:", *notes]
    by_name = {spec.name: {r.seed: r.metrics for r in runs} for spec, runs, _, _ in rows}
    pairs = [(spec.name, spec.ref) for spec, _, _, _ in rows if spec.ref] + list(EXTRA_PAIRS)
    dhead = ["Row", "against", "Paired seeds", *(f"Δ{k}" for k in DELTA_METRICS), "Verdict (AP, APt)"]
    dlines = ["| " + " | ".join(dhead) + " |", "|" + "---|" * len(dhead)]
    for name, ref in pairs:
        a, b = by_name.get(name, {}), by_name.get(ref, {})
        shared = sorted(set(a) & set(b))
        if not shared:
            dlines.append(
                f"| {name} | {ref} | none | " + " | ".join(["missing"] * len(DELTA_METRICS)) + " | missing |"
            )
            continue
        deltas = {
            k: paired_delta({s: a[s][k] for s in shared}, {s: b[s][k] for s in shared})
            for k in {*DELTA_METRICS, *VERDICT_METRICS}
        }
        cells = [name, ref, ",".join(map(str, shared)), *(_delta_cell(deltas[k]) for k in DELTA_METRICS)]
        dlines.append("| " + " | ".join([*cells, verdict(deltas)]) + " |")
    return (
        "\n".join(lines) + "\n\nPaired (same-seed) differences, points, mean ± std; **bold**: the "
        "difference counts (its mean exceeds its own std and the larger seed std of the two rows):\n\n"
        + "\n".join(dlines)
    )


def format_commands(rows: list[tuple[RowSpec, list[RunScore], list[int], tuple]], opts: ReportOptions) -> str:
    """Which command trained and scored each row, and each run's own predict and score commands."""
    seeds = opts.seeds
    flags = f" --seeds {seeds} --split {opts.split}" + (" --smoke" if opts.smoke else "")
    if opts.runs:
        flags += f" --runs {P.shown(opts.runs_root)}"
    report = f"python experiments/hituav/report.py{flags}"
    if opts.markdown != ReportOptions(smoke=opts.smoke).markdown:
        report += f" --markdown {P.shown(opts.markdown)}"
    out = [
        "Commands (from the repository root; lrnet's environment unless noted):",
        "",
        "```bash",
        "python experiments/hituav/prepare.py",
        f"python experiments/hituav/run_lrnet.py{flags}   # every lrnet row; --rows NAME for one",
        f"<peer-venv>/bin/python experiments/hituav/run_peer.py{flags} --lrnet-python .venv/bin/python",
        report,
        "```",
        "",
        "<details><summary>Each run's prediction and scoring commands</summary>",
        "",
    ]
    for spec, runs, _, _ in rows:
        for r in runs:
            c = r.record.get("commands", {})
            where = P.shown(P.score_file(P.run_dir(opts.runs_root, spec.folder, r.seed), opts.split))
            out.append(
                f"- {spec.name}, seed {r.seed} (`{where}`): `{c.get('predict', '?')}`; "
                f"`{c.get('score', '?')}`"
            )
    out += ["", "</details>"]
    return "\n".join(out)


def format_times(rows: list[tuple[RowSpec, list[RunScore], list[int], tuple]]) -> str:
    """Training time per run (sum of epoch times, validation included) and prediction time."""
    lines = [
        "| Row | Runs | Training min/run (mean) | s/epoch (median) | Predicting the split, s/image |",
        "|---|---|---|---|---|",
    ]
    for spec, runs, _, _ in rows:
        if not runs:
            continue
        per_run = [sum(r.epoch_seconds) / 60 for r in runs if r.epoch_seconds]
        epochs = sorted(t for r in runs for t in r.epoch_seconds)
        med = epochs[len(epochs) // 2] if epochs else math.nan
        pred = [r.record["predict_seconds"] / max(r.record["images"], 1) for r in runs]
        train_min = f"{sum(per_run) / len(per_run):.1f}" if per_run else "n/a"
        lines.append(f"| {spec.name} | {len(runs)} | {train_min} | {med:.1f} | {sum(pred) / len(pred):.3f} |")
    return "\n".join(lines)


def replace_between_markers(text: str, split: str, body: str) -> str:
    """`text` with the block between this split's markers replaced by `body` (appended if absent)."""
    begin, end = f"<!-- hituav-report:{split}:begin -->", f"<!-- hituav-report:{split}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text and text.index(begin) < text.index(end):
        return text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    return text.rstrip("\n") + f"\n\n{block}\n"


@dataclass
class ReportOptions:
    """What report.py was asked to do (its flags are these fields)."""

    split: str = option("val", help="the scored split to report", rule=Choice(P.SPLITS))
    seeds: str = option(",".join(map(str, P.SEEDS)), help="comma-separated seeds to report")
    smoke: bool = option(False, help="report the smoke runs (runs/hituav-smoke, into its REPORT.md)")
    runs: str = option(
        "",
        help="parent folder of the rows' runs ('' = the kept records, experiments/hituav/records, or "
        "runs/hituav-smoke)",
    )
    markdown: str = option(
        "", help="file whose block is rewritten ('' = experiments/REAL.md, or the smoke REPORT.md)"
    )
    png: str = option("", help="AP50 curve figure ('' = hituav_ap50.png beside the Markdown file)")

    def __post_init__(self) -> None:
        parse_seeds(self.seeds)
        if not self.markdown:
            smoke_md = P.default_runs(True) / "REPORT.md"
            self.markdown = str(smoke_md if self.smoke else P.REPO_ROOT / "experiments" / "REAL.md")
        self.png = self.png or str(Path(self.markdown).parent / "hituav_ap50.png")

    @property
    def runs_root(self) -> Path:
        if self.runs:
            return Path(self.runs)
        return P.default_runs(True) if self.smoke else P.RECORDS_ROOT


def build_report(opts: ReportOptions) -> str:
    """The Markdown block of the split (and the curve figure); raises when no run is scored."""
    seeds = parse_seeds(opts.seeds)
    loaded = [(spec, *load_runs(opts.runs_root, spec, opts.split, seeds)) for spec in table_rows()]
    if not any(runs for _, runs, _ in loaded):
        raise DataError(
            f"{opts.runs_root}: no run has scores/{opts.split}.json for seeds {seeds}; train and score with "
            "run_lrnet.py and run_peer.py first"
        )
    sizes: dict[str, dict] = {}
    rows = [(s, runs, miss, model_size(s, runs, opts.runs_root, sizes)) for s, runs, miss in loaded]
    curves = [
        VariantResult(Variant(spec.name, spec.model, spec.setting), 0, 0.0,
                      [RunSummary({}, r.curve, len(r.curve), r.seed) for r in runs])
        for spec, runs, _, _ in rows
        if runs and all(r.curve for r in runs)
    ]  # fmt: skip
    figure = plot_ap50_curves(curves, Path(opts.png)) if curves else None
    missing = [f"{spec.name} seed {s}" for spec, _, miss, _ in rows for s in miss]
    n_images = {r.record["images"] for _, runs, _, _ in rows for r in runs}
    title = {"val": "Development (val", "test": "Final table (test"}[
        opts.split
    ] + f", {max(n_images)} images)"
    if opts.smoke:
        title = f"Smoke runs ({opts.split}, {max(n_images)} images: they prove the pipeline, no more)"
    parts = [
        f"### {title}",
        "",
        f"Generated by `report.py` (commands below) from `{P.shown(opts.runs_root)}`; "
        "do not edit by hand. Metrics in %, mean ± sample std over the seeds (AI-TOD protocol, "
        "`lrnet eval-json`, last.pt, 320 px, conf 0.001, IoU 0.7, 1,500 detections per image). "
        "Params and GFLOPs of the 4-class model at 640 px (lrnet rows: lrnet's counter; ultralytics "
        "rows: ultralytics' own). CPU latency at 640 px is measured apart, by "
        "`benchmarks/bench_inference.py --against-ultralytics`, not by this report.",
        "",
        f"**Missing runs (not invented):** {', '.join(missing)}." if missing else "Every row has every seed.",
        "",
        format_results(rows, opts.split, seeds),
        "",
    ]
    if figure is not None:
        parts += [
            f"![AP50 per epoch on val, mean and min-max band over seeds]({Path(figure).name})",
            "",
            "AP50 per epoch comes from each trainer's own per-epoch validation on val (lrnet: AI-TOD "
            "AP50 with DontCare ignored; ultralytics: its mAP50, DontCare absent from its labels, so its "
            "detections there count as false positives): the shapes compare, the table's numbers come "
            "from the one evaluator.",
            "",
        ]
    parts += [
        "Time (this machine, as it was loaded):",
        "",
        format_times(rows),
        "",
        format_commands(rows, opts),
    ]
    return "\n".join(parts)


def write_report(opts: ReportOptions) -> Path:
    body = build_report(opts)
    path = Path(opts.markdown)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    write_text_atomic(path, replace_between_markers(text, opts.split, body))
    return path


def _main(opts: ReportOptions) -> int:
    print(f"wrote {write_report(opts)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_script("report.py", "Regenerate REAL.md's HIT-UAV results", ReportOptions, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
