"""`lrnet data synth|convert|tile|stats|formats`: make, convert and inspect detection data sets.

Each action's arguments are generated from its options dataclass (`SynthJob`, `ConvertJob`,
`StatsJob`, `TileJob`), declared next to the library function it configures.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from lrnet.data.convert import ConvertJob, convert
from lrnet.data.registry import describe_formats
from lrnet.data.stats import StatsJob, dataset_stats, format_stats, plot_stats
from lrnet.data.synthetic import SynthJob, generate_synthetic
from lrnet.data.tiling import TileJob, tile_dataset
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """The `data` actions: synth, convert, stats, tile, formats (each one's flags from its dataclass)."""
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    p = sub.add_parser("synth", help="write the synthetic tiny-object data set (YOLO format + val COCO JSON)")
    add_option_flags(p, SynthJob)
    p.set_defaults(func=_synth)

    p = sub.add_parser("convert", help="convert annotations between registered formats")
    add_option_flags(p, ConvertJob)
    p.set_defaults(func=_convert)

    p = sub.add_parser("stats", help="image/box counts and the AI-TOD object-size histogram")
    add_option_flags(p, StatsJob)
    p.set_defaults(func=_stats)

    p = sub.add_parser(
        "tile", help="cut a data set of large images into a tiled YOLO + COCO data set (SAHI slice names)"
    )
    add_option_flags(p, TileJob)
    p.set_defaults(func=_tile)

    p = sub.add_parser("formats", help="list the registered data formats and their data YAML keys")
    p.set_defaults(func=_formats)


def _synth(args: argparse.Namespace) -> int:
    job = options_from_args(SynthJob, args)
    t0 = time.perf_counter()
    path = generate_synthetic(**dataclasses.asdict(job))
    print(f"wrote {path} ({job.train} train + {job.val} val images in {time.perf_counter() - t0:.1f} s)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    job = options_from_args(ConvertJob, args)
    out = convert(job.fmt_in, job.fmt_out, job.src, job.dst, split=job.split)
    print(f"wrote {out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    job = options_from_args(StatsJob, args)
    png = job.plot_path()  # refused before any counting when it would touch the data
    stats = dataset_stats(job.data, job.split)
    print(format_stats(stats))
    print(f"plot: {plot_stats(stats, png, title=f'{job.data} [{job.split}]')}")
    return 0


def _tile(args: argparse.Namespace) -> int:
    for split, c in tile_dataset(options_from_args(TileJob, args)).items():
        print(
            f"{split}: {c['images']} images -> {c['tiles']} tiles ({c['empty_kept']} empty kept, "
            f"{c['empty_dropped']} dropped), {c['boxes']} boxes; {c['data_yaml']}, {c['coco_json']}, "
            f"{c['tiles_json']}"
            + (f"; {c['skipped']} unreadable images skipped" if c.get("skipped") else "")
            + (f"; {c['nodata_skipped']} all-nodata tiles skipped" if c.get("nodata_skipped") else "")
        )
    return 0


def _formats(args: argparse.Namespace) -> int:
    print(describe_formats())
    return 0
