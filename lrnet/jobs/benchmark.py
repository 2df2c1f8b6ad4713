"""`lrnet benchmark`: one weights file in every deployment format, side by side in one run.

For each format (`pytorch`, `torchscript`, `onnx`, `openvino`, optionally `-fp16` / `-int8`): the file
size, accuracy on a data split under the AI-TOD protocol (AP, AP50, APvt, APt, APs; the exported
model runs through the same validator as a checkpoint), and batch-1 latency split into pre-process
(letterbox), inference and post-processing (NMS), as median and 90th percentile over runs that
interleave the formats (so a change of machine load hits every format alike). Writes
`benchmark.md` and `benchmark.json` (atomically) into a run folder.

A timing job runs a fixed torch thread count, never an adaptive one (a count chosen while timing would
time the choice): `threads`, or 0 for `lrnet.runtime.threads.default_threads` of this machine (the
count `lrnet val` and `predict` start at); it is reported with the results.
"""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lrnet.data import build_dataloader
from lrnet.data.dataset import DetectionDataset
from lrnet.data.formats import dataset_inputs
from lrnet.data.images import decode_image
from lrnet.errors import ConfigError, DataError
from lrnet.fileio import write_text_atomic
from lrnet.jobs.export import FORMAT_SUFFIXES, ExportJob, run_export
from lrnet.runtime.allocator import keep_freed_memory
from lrnet.runtime.backends import carries_code, refuse_untrusted_code
from lrnet.runtime.predictor import Predictor, load_inference_model
from lrnet.runtime.run_dir import next_run_dir
from lrnet.runtime.threads import MAX_THREADS, available_cores, resolve_threads, torch_threads_kept
from lrnet.runtime.validator import evaluate
from lrnet.schema import Range, check_options, option

PRECISIONS = ("fp32", "fp16", "int8")
STAGES = ("preprocess", "inference", "postprocess")
METRICS = ("AP", "AP50", "APvt", "APt", "APs")
DEFAULT_FORMATS = ("pytorch", "onnx", "onnx-int8", "openvino", "openvino-int8")
# 'pytorch, onnx, openvino, torchscript, each optionally -fp16 or -int8' for help texts and errors
FORMAT_SPECS = (
    f"{', '.join(('pytorch', *FORMAT_SUFFIXES))}, each optionally "
    f"{' or '.join('-' + p for p in PRECISIONS if p != 'fp32')}"
)


def parse_format(spec: str) -> tuple[str, str]:
    """'openvino-int8' -> ('openvino', 'int8'); 'pytorch' -> ('pytorch', 'fp32')."""
    name, _, precision = spec.partition("-")
    precision = precision or "fp32"
    if name not in ("pytorch", *FORMAT_SUFFIXES) or precision not in PRECISIONS:
        raise ConfigError(f"format {spec!r} is unknown; use {FORMAT_SPECS} (e.g. openvino-int8)")
    if name == "pytorch" and precision != "fp32":
        raise ConfigError(f"format {spec!r}: PyTorch runs fp32 here; export for fp16 or int8")
    return name, precision


@dataclass
class BenchmarkJob:
    """What `lrnet benchmark` was asked to do; `imgsz` None: the training size; `threads` 0: lrnet's
    default count for this machine (`default_threads`), fixed for the whole run."""

    weights: str = option(help="lrnet checkpoint (.pt)")
    data: str = option(help="data to validate on (and to calibrate int8 with)")
    formats: list[str] = option(
        help=f"formats to compare: {FORMAT_SPECS}", default_factory=lambda: list(DEFAULT_FORMATS)
    )
    imgsz: int | None = option(
        None, help="input size; not given: the training size", rule=Range(32, 32_768, multiple_of=32)
    )
    split: str = option("val", help="split to validate on")
    calib_split: str = option("train", help="split to calibrate int8 on")
    calib_images: int = option(32, help="images to calibrate int8 on", rule=Range(1, 100_000))
    runs: int = option(20, help="timed runs per format (interleaved)", rule=Range(1, 100_000))
    warmup: int = option(3, help="untimed runs per format before the timed ones", rule=Range(0, 1000))
    threads: int = option(
        0, help="torch threads, fixed for the timing (0: lrnet's default for this machine, which "
        "val and predict start at)", rule=Range(0, MAX_THREADS),
    )  # fmt: skip
    project: str = option("runs/benchmark", help="parent folder of runs")
    name: str = option("exp", help="run name (a number is appended if it exists, unless exist_ok)")
    exist_ok: bool = option(False, help="reuse an existing run folder")
    trust_code: bool = option(
        False, help="weights may be a program (TorchScript: its code runs when loaded; also "
        "LRNET_TRUST_CODE=1); the files this benchmark exports are trusted",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_options(self)
        self.formats = [self.formats] if isinstance(self.formats, str) else list(self.formats)
        if not self.formats:
            raise ConfigError("formats is empty; name at least one, e.g. pytorch")
        for spec in self.formats:
            parse_format(spec)


@dataclass
class FormatRow:
    """One line of the table."""

    format: str
    file: str
    size_mib: float
    metrics: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    export_check: str = ""


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _export(job: BenchmarkJob, spec: str, folder: Path) -> tuple[Path, str]:
    name, precision = parse_format(spec)
    if name == "pytorch":
        return Path(job.weights), ""
    out = folder / f"{Path(job.weights).stem}-{precision}{FORMAT_SUFFIXES[name]}"
    result = run_export(
        ExportJob(
            job.weights,
            format=name,
            out=str(out),
            imgsz=job.imgsz,
            half=precision == "fp16",
            int8=precision == "int8",
            data=job.data if precision == "int8" else None,
            split=job.calib_split,
            calib_images=job.calib_images,
            check_images=32,  # more detections than the export default, for a steadier share
        )
    )
    d = result.detections
    check = f"max diff {result.max_rel_diff:.1e}"
    if d is not None:
        check += f", {d.matched}/{d.total} dets matched"
    return out, check + ("" if result.ok else " (FAILED)")


def first_decodable_image(records: list[Any]) -> np.ndarray:
    """The first image of `records` that decodes (`decode_image`: pixel limit on the header), for the
    latency runs; `DataError` naming the first file when none does."""
    for r in records:
        try:
            return decode_image(r.im_file)
        except (DataError, FileNotFoundError):
            continue
    first = records[0].im_file if records else "the split"
    raise DataError(f"{first}: no image of the split decodes, nothing to time the models on; check them")


def run_benchmark(job: BenchmarkJob) -> dict[str, Any]:
    """Export, validate and time every format at one fixed thread count (put back afterwards);
    returns the summary written to benchmark.json."""
    with torch_threads_kept():
        return _run_benchmark(job)


def _run_benchmark(job: BenchmarkJob) -> dict[str, Any]:
    if carries_code(job.weights):  # before a run folder is made; the exports below are lrnet's own
        refuse_untrusted_code(job.weights, job.trust_code)
    torch.set_num_threads(resolve_threads(job.threads, workers=0))  # fixed: timings compare
    inputs = [job.weights, *dataset_inputs(job.data)]  # the run folder never is, holds or is inside one
    out_dir = next_run_dir(job.project, job.name, job.exist_ok, inputs=inputs)
    models: dict[str, Any] = {}
    rows: dict[str, FormatRow] = {}
    imgsz = job.imgsz
    for spec in tqdm(job.formats, desc="export + validate", leave=False):
        path, check = _export(job, spec, out_dir / "models")
        own_export = parse_format(spec)[0] != "pytorch"  # written just now from the checkpoint
        keep_freed_memory()  # large activations reused, not re-faulted per image
        model, _, default_imgsz = load_inference_model(path, trust_code=job.trust_code or own_export)
        imgsz = imgsz or default_imgsz
        files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
        size = sum(p.stat().st_size for p in files if p.is_file()) / 2**20
        dataset = DetectionDataset(job.data, split=job.split, imgsz=imgsz, augment=False, verbose=False)
        result = evaluate(model, build_dataloader(dataset, 1, shuffle=False, workers=0), progress=False)
        metrics = {k: 100 * result["metrics"].get(k, -0.01) for k in METRICS}
        rows[spec] = FormatRow(spec, str(path), size, metrics, export_check=check)
        models[spec] = Predictor(model, imgsz=imgsz, conf=0.001, max_det=1500, batch=1)

    image = first_decodable_image(dataset.records)
    times: dict[str, dict[str, list[float]]] = {s: {k: [] for k in (*STAGES, "total")} for s in models}
    for i in tqdm(range(job.warmup + job.runs), desc="latency (interleaved)", leave=False):
        for spec, predictor in models.items():
            before = dict(predictor.times)
            predictor.predict_image(image)
            if i < job.warmup:
                continue
            dt = {k: 1000.0 * (predictor.times[k] - before[k]) for k in STAGES}
            for k, v in dt.items():
                times[spec][k].append(v)
            times[spec]["total"].append(sum(dt.values()))
    for spec, t in times.items():
        lat = {f"{k}_median": statistics.median(v) for k, v in t.items()}
        lat["total_p90"] = _percentile(t["total"], 0.9)
        rows[spec].latency_ms = lat

    summary = {
        "weights": str(job.weights),
        "data": str(job.data),
        "split": job.split,
        "imgsz": imgsz,
        "protocol": "aitod",
        "runs": job.runs,
        "threads": torch.get_num_threads(),
        "cores": available_cores(),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()} {platform.release()}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": [asdict(r) for r in rows.values()],
        "save_dir": str(out_dir),
    }
    write_text_atomic(out_dir / "benchmark.json", json.dumps(summary, indent=2))
    write_text_atomic(out_dir / "benchmark.md", format_markdown(summary))
    return summary


def format_markdown(summary: dict[str, Any]) -> str:
    """The Markdown table of a benchmark summary (metrics in %, times in ms per image)."""
    base = summary["rows"][0]["latency_ms"]["total_median"]
    times = ["pre ms", "inference ms", "post ms", "total ms", "p90 ms"]
    head = ["format", "size MiB", *METRICS, *times, f"x {summary['rows'][0]['format']}", "export check"]
    lines = [
        f"`{summary['weights']}` on `{summary['data']}` ({summary['split']}, AI-TOD protocol), imgsz "
        f"{summary['imgsz']}, batch 1, {summary['threads']} thread(s) on {summary['cores']} core(s), "
        f"median and p90 of {summary['runs']} interleaved runs; {summary['machine']}; {summary['date']}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in summary["rows"]:
        m, t = r["metrics"], r["latency_ms"]
        cells = [r["format"], f"{r['size_mib']:.1f}", *(f"{m[k]:.1f}" if m[k] >= 0 else "-" for k in METRICS)]
        cells += [f"{t[f'{k}_median']:.1f}" for k in STAGES]
        cells += [f"{t['total_median']:.1f}", f"{t['total_p90']:.1f}", f"{t['total_median'] / base:.2f}"]
        cells.append(r["export_check"] or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
