"""The paper's ablation tables (its Tables 3-8) as data, and a resumable runner that trains every variant.

Each variant is an ordinary training run (`lrnet.training.trainer.train`) in its own folder
`<project>/<table>/<variant>/seed<k>`; a variant whose run wrote `done.json` is not trained again, and
one with a `weights/last.pt` but no `done.json` is resumed. Runs go seed by seed (every variant of the
first seed, then of the next), so a stopped table has whole seeds rather than whole rows. The report
takes, per run, the epoch with the best fitness (the epoch `best.pt` holds), then mean and spread over
the seeds that finished; `report_only` writes it from the finished runs without training.

`AblateOptions` holds what `lrnet ablate` was asked (table, seeds, rows, folder, and the training options
every variant shares); its fields are the command's flags.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrnet.errors import ConfigError, DataError, InputFileNotFoundError
from lrnet.fileio import save_figure_atomic, write_text_atomic
from lrnet.losses import YOLOV8_ASSIGNER, parse_box_loss_spec
from lrnet.nn import build_model
from lrnet.nn.summary import model_info
from lrnet.schema import Choice, check_options, option, option_fields, option_like
from lrnet.training.ema import YOLOV8_EMA_TAU
from lrnet.training.plots import read_results_csv
from lrnet.training.train_config import TrainConfig
from lrnet.training.trainer import train
from lrnet.weights.checkpoint import load_checkpoint

# The table's metric columns, in the paper's order: the subset of `lrnet.eval.METRIC_NAMES` the paper
# reports (AP75 and COCO's APl are left out).
REPORT_METRICS = ("AP", "AP50", "APvt", "APt", "APs", "APm")


@dataclass(frozen=True)
class Variant:
    """One row of an ablation table: a model config, a box-loss spec (`TrainConfig.box_loss`) and any
    other `TrainConfig` options of the row as (name, value) pairs (e.g. the assigner's metric)."""

    name: str
    model: str
    box_loss: str
    options: tuple[tuple[str, Any], ...] = ()

    def describe_loss(self) -> str:
        """The box loss, then the row's other options: the table's "Box loss" cell."""
        extra = "".join(f", {k}={v}" for k, v in self.options)
        return f"`{self.box_loss}`{extra}"


@dataclass(frozen=True)
class Ablation:
    """One of the paper's tables: what it compares and the rows, the first being the reference."""

    title: str
    paper: str
    variants: tuple[Variant, ...]
    # True: one table per model, deltas against that model's first row (a change tried on several
    # models); False: one table, deltas against the first row.
    per_model: bool = False


# RSIoU parts: Part 1 `center_distance` (the centre term measured as a Euclidean distance), Part 2
# `direction_fix` (the angle cost pushes towards the nearer axis), Part 3 `focal` (the focusing weight
# IoU**gamma with gamma from the angle). With all three off, RSIoU is SIoU. The specs are parsed by the
# box-loss registry (`lrnet.losses.parse_box_loss_spec`), which `check_ablation` runs before training.
_SIOU = "rsiou:center_distance=0,direction_fix=0,focal=none"
_RSIOU = "rsiou"  # all three parts, the LR-Net default (focal=angle, alpha=0.5)
# The NWD assigner (docs/SIMILARITY.md): NWD in the alignment metric, and sub-stride gts take their
# topk nearest anchors, as the NWD paper's assigner is not limited to anchors inside the box.
_NWD_ASSIGNER = (("assign_metric", "nwd"), ("assign_outside", True))
# Every row trains with the paper's assigner (YOLOv8's: CIoU, candidates inside the box as it is)
# unless the row, or the table's shared options, name another: a model's default assigner (its YAML's
# assign_metric:, assign_min_side:) may change, the paper's tables may not.
PAPER_ASSIGNER = YOLOV8_ASSIGNER
# ... and the paper's EMA warm-up (YOLOv8's tau 2000), which lrnet's default (auto) changes on short runs.
PAPER_EMA = (("ema_tau", YOLOV8_EMA_TAU),)

ABLATIONS: dict[str, Ablation] = {
    "components": Ablation(
        title="Components: LFF (with the P2 hierarchy) and RSIoU on YOLOv8n",
        paper="Table 3",
        variants=(
            Variant("yolov8n", "yolov8n", "ciou"),
            Variant("+LFF", "lrnet-n", "ciou"),
            Variant("+RSIoU", "yolov8n", _RSIOU),
            Variant("LR-Net", "lrnet-n", _RSIOU),
        ),
    ),
    "rsiou-parts": Ablation(
        title="RSIoU parts on the P2 hierarchy (yolov8n-p2)",
        paper="Table 4",
        variants=(
            Variant("CIoU", "yolov8n-p2", "ciou"),
            Variant("SIoU", "yolov8n-p2", _SIOU),
            Variant("+Part1", "yolov8n-p2", "rsiou:center_distance=1,direction_fix=0,focal=none"),
            Variant("+Part2", "yolov8n-p2", "rsiou:center_distance=0,direction_fix=1,focal=none"),
            Variant("+Part3", "yolov8n-p2", "rsiou:center_distance=0,direction_fix=0,focal=angle"),
            Variant("+Part1+2+3", "yolov8n-p2", _RSIOU),
        ),
    ),
    "focal": Ablation(
        title="Focusing parameter of RSIoU (lrnet-n)",
        paper="Table 5",
        variants=(
            Variant("none (gamma=1)", "lrnet-n", "rsiou:focal=none"),
            Variant("static 0.5, alpha 1", "lrnet-n", "rsiou:focal=static,alpha=1"),
            Variant("static 0.5, alpha 0.5", "lrnet-n", "rsiou:focal=static,alpha=0.5"),
            Variant("angle-2, alpha 1", "lrnet-n", "rsiou:focal=angle,alpha=1"),
            Variant("angle-2, alpha 0.5", "lrnet-n", "rsiou:focal=angle,alpha=0.5"),
        ),
    ),
    "eiou-focal": Ablation(
        title="Focusing parameter on EIoU (lrnet-n)",
        paper="Table 6",
        variants=(
            Variant("EIoU", "lrnet-n", "eiou"),
            Variant("Focal-EIoU (gamma=0.5)", "lrnet-n", "eiou:focal=static"),
            Variant("EIoU gamma=-distance", "lrnet-n", "eiou:focal=distance"),
        ),
    ),
    "distance": Ablation(
        title="Centre Euclidean distance: SIoU vs RSIoU* (Part 1 alone), lrnet-n",
        paper="Table 7, Fig. 11",
        variants=(
            Variant("SIoU", "lrnet-n", _SIOU),
            Variant("RSIoU*", "lrnet-n", "rsiou:center_distance=1,direction_fix=0,focal=none"),
        ),
    ),
    "direction": Ablation(
        title="Convergence direction: SIoU vs SIoU* (Part 2 alone), lrnet-n",
        paper="Table 8, Fig. 13",
        variants=(
            Variant("SIoU", "lrnet-n", _SIOU),
            Variant("SIoU*", "lrnet-n", "siou:direction_fix=1"),
        ),
    ),
    "similarity": Ablation(
        title="Gaussian similarity (NWD) in the assigner and the box loss, yolov8n and lrnet-n",
        paper="beyond the paper: NWD, Wang et al. 2021",
        variants=(
            Variant("yolov8n", "yolov8n", "ciou"),
            Variant("yolov8n NWD assigner", "yolov8n", "ciou", _NWD_ASSIGNER),
            Variant("yolov8n NWD loss", "yolov8n", "nwd"),
            Variant("yolov8n NWD both", "yolov8n", "nwd", _NWD_ASSIGNER),
            Variant("LR-Net", "lrnet-n", _RSIOU),
            Variant("LR-Net NWD assigner", "lrnet-n", _RSIOU, _NWD_ASSIGNER),
            Variant("LR-Net NWD loss", "lrnet-n", "nwd"),
            Variant("LR-Net NWD both", "lrnet-n", "nwd", _NWD_ASSIGNER),
        ),
        per_model=True,
    ),
}


@dataclass
class RunSummary:
    """What one finished run contributes to the table."""

    metrics: dict[str, float]
    ap50_curve: list[float]
    epochs: int
    seed: int | None = None


@dataclass
class VariantResult:
    """All seeds of one variant, with the model's size."""

    variant: Variant
    params: int
    gflops: float
    runs: list[RunSummary] = field(default_factory=list)

    def mean_std(self, key: str) -> tuple[float, float]:
        """Mean and sample standard deviation over seeds (std 0 for a single seed)."""
        return mean_std([r.metrics.get(key, float("nan")) for r in self.runs])

    def by_seed(self) -> dict[int, dict[str, float]]:
        """Metrics of each run that knows its seed, by seed."""
        return {r.seed: r.metrics for r in self.runs if r.seed is not None}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (std 0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def slug(name: str) -> str:
    """Folder-safe form of a variant name ("+LFF" -> "plus-LFF")."""
    out = name.replace("+", "plus-").replace("*", "-star")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in out).strip("_")


def variant_run_dir(root: Path, variant: Variant, seed: int) -> Path:
    """Folder of one variant's run with one seed: `<root>/<slug(name)>/seed<k>`."""
    return root / slug(variant.name) / f"seed{seed}"


def summarize_run(path: Path, seed: int | None = None) -> RunSummary:
    """Summarise a run's results.csv: the metrics of its best-fitness epoch and its AP50 curve."""
    header, data = read_results_csv(path)
    if not data:
        raise DataError(f"{path}: no epochs recorded; delete the run folder to train that variant again")
    rows = [dict(zip(header, row)) for row in data]
    best = max(rows, key=lambda r: r["fitness"])
    metrics = {k: best[f"metrics/{k}"] for k in REPORT_METRICS if f"metrics/{k}" in best}
    return RunSummary(
        metrics=metrics, ap50_curve=[r["metrics/AP50"] for r in rows], epochs=len(rows), seed=seed
    )


def parse_seeds(text: str) -> list[int]:
    """Seeds from comma-separated text such as "0,1,2" (at least one)."""
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"seeds={text!r} is not a comma-separated list of integers; e.g. 0,1,2") from None
    if not seeds:
        raise ConfigError(f"seeds={text!r} names no seed; e.g. 0,1,2")
    return seeds


@dataclass
class AblateOptions:
    """What `lrnet ablate` was asked to do: which table, seeds and rows, where the runs go, and the
    training options every variant shares. Those are `TrainConfig`'s own options with the ablation's
    defaults (`option_like`), and `train_overrides` passes them on; any other training option is a
    `KEY=VALUE` override (`lrnet ablate --set`, `parse_overrides`)."""

    table: str = option(
        help="the ablation table to reproduce", rule=Choice(lambda: tuple(ABLATIONS)), positional=True
    )
    seeds: str = option("0,1,2", help="comma-separated seeds; every variant is trained once per seed")
    variants: str = option(
        "",
        help="comma-separated rows to train and report, by name or folder name ('' = all), e.g. "
        "'LR-Net,LR-Net NWD assigner' or LR-Net,LR-Net_NWD_assigner: split a table over machines",
    )
    report_only: bool = option(
        False, help="train nothing: write the table from the runs that finished, listing those that did not"
    )
    project: str = option("runs/ablate", help="parent folder of the table's runs")
    data: str = option_like(TrainConfig, "data", "synthetic")
    epochs: int = option_like(TrainConfig, "epochs", 30)
    imgsz: int = option_like(TrainConfig, "imgsz", 640)
    batch: int = option_like(TrainConfig, "batch", 16)
    device: str = option_like(TrainConfig, "device", "auto")
    workers: int = option_like(TrainConfig, "workers", 2)

    def __post_init__(self) -> None:
        check_options(self)
        parse_seeds(self.seeds)  # a typo fails here, before any training

    @property
    def seed_list(self) -> list[int]:
        return parse_seeds(self.seeds)

    @property
    def variant_names(self) -> list[str]:
        return [v.strip() for v in self.variants.split(",") if v.strip()]

    def train_overrides(self) -> dict[str, Any]:
        """The shared training options: the fields declared as `TrainConfig`'s (`option_like`)."""
        declared = {f.name: f.metadata for f in option_fields(TrainConfig)}
        return {
            f.name: getattr(self, f.name) for f in option_fields(self) if declared.get(f.name) == f.metadata
        }


def run_variant(
    variant: Variant,
    seed: int,
    run_dir: Path,
    train_overrides: dict[str, Any],
    train_fn: Callable[..., Any] | None = None,
) -> RunSummary:
    """Train one variant with one seed in `run_dir` unless it already finished; resume a killed run."""
    finished = finished_run(run_dir, seed)
    if finished is not None:
        return finished
    if train_fn is None:
        train_fn = train
    last = run_dir / "weights" / "last.pt"
    if last.is_file():  # the saved run's settings win; only where and how it runs may change
        runtime = {k: train_overrides[k] for k in ("device", "workers") if k in train_overrides}
        train_fn(resume=str(last), **runtime)
    else:
        train_fn(
            **{**dict(PAPER_ASSIGNER), **dict(PAPER_EMA), **train_overrides, **dict(variant.options)},
            model=variant.model,
            box_loss=variant.box_loss,
            seed=seed,
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
        )
    summary = summarize_run(run_dir / "results.csv", seed)
    write_text_atomic(
        run_dir / "done.json",
        json.dumps({"variant": variant.name, "seed": seed, "metrics": summary.metrics}, indent=2),
    )
    return summary


def finished_run(run_dir: Path, seed: int) -> RunSummary | None:
    """The summary of the run in `run_dir` if it finished (wrote `done.json`), else None."""
    if not (run_dir / "done.json").is_file():
        return None
    return summarize_run(run_dir / "results.csv", seed)


def run_ablation(
    table: str,
    seeds: Sequence[int] = (0, 1, 2),
    project: str | Path = "runs/ablate",
    train_fn: Callable[..., Any] | None = None,
    variants: Sequence[str] | None = None,
    report_only: bool = False,
    **train_overrides: Any,
) -> tuple[list[VariantResult], Path]:
    """Train the variants of `table` for every seed (skipping finished runs) and write the report.

    `train_overrides` are `TrainConfig` fields shared by all variants (data, epochs, imgsz, batch,
    device, workers, ...). `variants` names the rows to train and report (names or folder names;
    default all), e.g. to split a table over machines. `report_only` trains nothing and reports the
    runs that finished. Returns the per-variant results and the path of the Markdown report.
    """
    if table not in ABLATIONS:
        raise ConfigError(f"unknown ablation table {table!r}; choose one of {sorted(ABLATIONS)}")
    ablation = ABLATIONS[table]
    chosen = select_variants(ablation, variants)
    nc = train_overrides.pop("nc", None)
    check_ablation(ablation, train_overrides)
    root = Path(project) / table
    runs: dict[str, list[RunSummary]] = {v.name: [] for v in chosen}
    missing: list[str] = []
    for seed in seeds:
        for variant in chosen:
            run_dir = variant_run_dir(root, variant, seed)
            if report_only:
                summary = finished_run(run_dir, seed)
                if summary is None:
                    missing.append(f"{variant.name} seed {seed}")
                    continue
            else:
                summary = run_variant(variant, seed, run_dir, train_overrides, train_fn)
            runs[variant.name].append(summary)
    results = _variant_results(chosen, runs, root, nc, int(train_overrides.get("imgsz", 640)))
    if not results:
        raise DataError(
            f"{root}: no finished run of {[v.name for v in chosen]} for seeds {list(seeds)}; run without "
            "report_only to train them"
        )
    report = write_report(ablation, table, results, root, seeds, train_overrides, missing)
    return results, report


def select_variants(ablation: Ablation, names: Sequence[str] | None) -> list[Variant]:
    """The rows of `ablation` named in `names` (a row's name or its folder name), in table order."""
    if not names:
        return list(ablation.variants)
    known = {v.name: v for v in ablation.variants} | {slug(v.name): v for v in ablation.variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"{ablation.paper}: no variant named {unknown}; choose from {[v.name for v in ablation.variants]}"
        )
    wanted = {known[n].name for n in names}
    return [v for v in ablation.variants if v.name in wanted]


def _variant_results(
    chosen: list[Variant],
    runs: dict[str, list[RunSummary]],
    root: Path,
    nc: int | None,
    imgsz: int,
) -> list[VariantResult]:
    """Size and runs of each variant that has at least one finished run."""

    results, infos = [], {}
    for variant in chosen:
        if not runs[variant.name]:
            continue
        first = runs[variant.name][0]
        key = (variant.model, nc or _nc_of_run(variant_run_dir(root, variant, first.seed)))
        if key not in infos:
            infos[key] = model_info(build_model(key[0], nc=key[1]), imgsz=imgsz)
        info = infos[key]
        results.append(VariantResult(variant, int(info["params"]), float(info["gflops"]), runs[variant.name]))
    return results


def check_ablation(ablation: Ablation, shared: dict[str, Any] | None = None) -> None:
    """Resolve every variant's box-loss spec through the box-loss registry, and its other options with
    the `shared` ones through `TrainConfig`, before any training starts, so that a typo fails in a
    second rather than after the first variants have trained."""

    for variant in ablation.variants:
        try:
            parse_box_loss_spec(variant.box_loss)
            TrainConfig.from_dict(
                {**(shared or {}), **dict(variant.options)},
                source="the shared settings and the variant's options",
            )
        except (TypeError, ValueError) as e:
            raise ConfigError(f"ablation {ablation.paper}, variant {variant.name!r}: {e}") from e


def _nc_of_run(run_dir: Path) -> int:
    """Class count of a finished run, read from its checkpoint."""

    for name in ("best.pt", "last.pt"):
        path = run_dir / "weights" / name
        if path.is_file():
            return int(load_checkpoint(path)["model_cfg"]["nc"])
    raise InputFileNotFoundError(
        f"{run_dir}: no weights/best.pt or weights/last.pt to read the class count from; pass nc= or delete "
        "the run folder to train it again"
    )


def format_table(results: list[VariantResult]) -> str:
    """Markdown table: size, seed count, then mean ± sample std over seeds in % (the value alone for
    one seed) and the delta against the first row, over the same seeds when the first row has them
    (a row that finished fewer seeds is not compared with other seeds' luck)."""
    head = ["Variant", "Model", "Box loss", "Params (M)", "GFLOPs", "Seeds", *REPORT_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = results[0]
    ref_by_seed = ref.by_seed()

    def ref_mean(res: VariantResult, key: str) -> float:
        seeds = [r.seed for r in res.runs]
        if all(s in ref_by_seed for s in seeds):
            return mean_std([ref_by_seed[s].get(key, math.nan) for s in seeds])[0]
        return ref.mean_std(key)[0]

    for res in results:
        cells = [res.variant.name, res.variant.model, res.variant.describe_loss()]
        cells += [f"{res.params / 1e6:.3f}", f"{res.gflops:.1f}", str(len(res.runs))]
        for key in REPORT_METRICS:
            mean, std = res.mean_std(key)
            if mean < 0:  # no ground truth in that size bin
                cells.append("n/a")
                continue
            cell = f"{100 * mean:.2f} ± {100 * std:.2f}" if len(res.runs) > 1 else f"{100 * mean:.2f}"
            if res is not ref:
                cell += f" ({100 * (mean - ref_mean(res, key)):+.2f})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_paired_deltas(results: list[VariantResult]) -> str:
    """Markdown table of each row's difference from the first row seed by seed (same seed, same
    initial weights and data order), mean ± sample std over the seeds both finished, in %.

    Seeds move every row together, so the spread of these paired differences is what tells a change
    from noise; the unpaired stds of the main table overstate it. Empty with fewer than two such seeds.
    """
    ref = results[0].by_seed()
    head = ["Variant", "Seeds", *REPORT_METRICS]
    lines = []
    for res in results[1:]:
        pairs = [(r.metrics, ref[r.seed]) for r in res.runs if r.seed is not None and r.seed in ref]
        if len(pairs) < 2:
            continue
        cells = [res.variant.name, str(len(pairs))]
        for key in REPORT_METRICS:
            if any(m.get(key, -1) < 0 or m0.get(key, -1) < 0 for m, m0 in pairs):
                cells.append("n/a")
                continue
            mean, std = mean_std([100 * (m[key] - m0[key]) for m, m0 in pairs])
            cells.append(f"{mean:+.2f} ± {std:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if not lines:
        return ""
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *lines])


def format_tables(ablation: Ablation, results: list[VariantResult]) -> str:
    """The report's table(s), each followed by its paired differences where two seeds allow: one, or
    one per model when the ablation compares within each model."""
    groups = [("", results)]
    if ablation.per_model:
        models = list(dict.fromkeys(r.variant.model for r in results))
        groups = [(f"{m}:\n\n", [r for r in results if r.variant.model == m]) for m in models]
    parts = []
    for label, group in groups:
        text = f"{label}{format_table(group)}"
        paired = format_paired_deltas(group)
        if paired:
            text += f"\n\nDifference from {group[0].variant.name}, seed by seed (paired):\n\n{paired}"
        parts.append(text)
    return "\n\n".join(parts)


def plot_ap50_curves(results: list[VariantResult], path: Path) -> Path:
    """AP50 per epoch, mean over seeds with a min-max band (the paper's Fig. 11 and 13)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for res in results:
        n = min(len(r.ap50_curve) for r in res.runs)
        curves = [[100 * v for v in r.ap50_curve[:n]] for r in res.runs]
        epochs = list(range(1, n + 1))
        mean = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
        ax.plot(epochs, mean, marker="o", ms=3, label=res.variant.name)
        if len(curves) > 1:
            lo = [min(c[i] for c in curves) for i in range(n)]
            hi = [max(c[i] for c in curves) for i in range(n)]
            ax.fill_between(epochs, lo, hi, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("AP50 (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)
    return path


def write_report(
    ablation: Ablation,
    table: str,
    results: list[VariantResult],
    root: Path,
    seeds: Sequence[int],
    settings: dict[str, Any],
    missing: Sequence[str] = (),
) -> Path:
    """Write `<root>/results.md` (table + settings) and `<root>/ap50_curves.png`; return the .md path.
    `missing` lists the runs that have not finished (a report of a partial table)."""
    root.mkdir(parents=True, exist_ok=True)
    plot = plot_ap50_curves(results, root / "ap50_curves.png")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    reference = "that model's first row" if ablation.per_model else "the first row"
    partial = f"**Not finished, left out:** {', '.join(missing)}.\n\n" if missing else ""
    text = (
        f"# {ablation.title} ({ablation.paper})\n\n"
        f"Seeds {list(seeds)}; metrics in %, mean ± sample std over the seeds that finished (Seeds column) "
        f"at each run's best-fitness epoch, delta against {reference} over the same seeds in parentheses. "
        f"Settings: {shown or 'defaults'}.\n\n{partial}"
        f"{format_tables(ablation, results)}\n\n![AP50 per epoch]({plot.name})\n"
    )
    path = root / "results.md"
    write_text_atomic(path, text)
    write_text_atomic(
        root / "results.json",
        json.dumps(
            [
                {
                    "variant": r.variant.name,
                    "model": r.variant.model,
                    "box_loss": r.variant.box_loss,
                    "options": dict(r.variant.options),
                    "params": r.params,
                    "gflops": r.gflops,
                    "runs": [x.metrics for x in r.runs],
                }
                for r in results
            ],
            indent=2,
        ),
    )
    return path
