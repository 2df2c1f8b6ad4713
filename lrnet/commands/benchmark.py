"""`lrnet benchmark`: export one checkpoint to several formats and compare them side by side in one run:
file size, AI-TOD accuracy on a data split, and batch-1 latency (pre-process / inference / NMS, median
and p90 over interleaved runs). Writes benchmark.md and benchmark.json into the run folder.
"""

from __future__ import annotations

import argparse

from lrnet.jobs.benchmark import BenchmarkJob, format_markdown, run_benchmark
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `benchmark` sub-command; every `BenchmarkJob` field is a flag."""
    add_option_flags(parser, BenchmarkJob)  # one flag per BenchmarkJob field
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the Markdown table."""

    job = options_from_args(BenchmarkJob, args)
    summary = run_benchmark(job)
    print(format_markdown(summary))
    print(f"results saved to {summary['save_dir']} (benchmark.md, benchmark.json)")
    return 0
