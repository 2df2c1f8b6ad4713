"""`lrnet data synth|convert|tile|stats|formats`: make, convert and inspect detection data sets."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from lrnet.data.convert import convert
from lrnet.data.registry import describe_formats, format_names, writable_format_names
from lrnet.data.stats import dataset_stats, default_plot_path, format_stats, plot_stats
from lrnet.data.synthetic import generate_synthetic
from lrnet.data.tiling import TileJob, tile_dataset


class _RegisteredFormats:
    """argparse `choices` read from the data-format registry when a value is checked or listed.

    The registry is imported only then, so building the parser (every `lrnet` call) does not import
    lrnet.data (torch, OpenCV); formats registered before parsing (e.g. by a test) are accepted.
    """

    def __init__(self, writable: bool) -> None:
        self.writable = writable

    def _names(self) -> list[str]:

        return writable_format_names() if self.writable else format_names()

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def configure(parser: argparse.ArgumentParser) -> None:
    """The `data` actions: synth, convert, stats, tile, formats."""
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    p = sub.add_parser("synth", help="write the synthetic tiny-object data set (YOLO format + val COCO JSON)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train", type=int, default=200, help="training images")
    p.add_argument("--val", type=int, default=50, help="validation images")
    p.add_argument("--imgsz", type=int, default=640, help="image side in pixels")
    p.add_argument("--classes", type=int, default=6, help="number of classes (1-8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers", type=int, default=2, help="generator processes (output does not depend on it)"
    )
    p.set_defaults(func=_synth)

    p = sub.add_parser("convert", help="convert annotations between registered formats")
    p.add_argument(
        "--from",
        dest="fmt_in",
        required=True,
        metavar="FORMAT",
        choices=_RegisteredFormats(writable=False),
        help="input format: %(choices)s",
    )
    p.add_argument(
        "--to",
        dest="fmt_out",
        required=True,
        metavar="FORMAT",
        choices=_RegisteredFormats(writable=True),
        help="output format: %(choices)s",
    )
    p.add_argument("--split", default="train", help="split name (VOC set, YOLO YAML key, output folder name)")
    p.add_argument("src", help="input file or folder of the --from format (see `lrnet data formats`)")
    p.add_argument("dst", help="output folder (or .json file for --to coco)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("stats", help="image/box counts and the AI-TOD object-size histogram")
    p.add_argument("data", help="data YAML, COCO JSON or data folder")
    p.add_argument("--split", default="train")
    p.add_argument("--out", default=None, help="PNG plot path (default: runs/stats/<data stem>_<split>.png)")
    p.set_defaults(func=_stats)

    p = sub.add_parser(
        "tile", help="cut a data set of large images into a tiled YOLO + COCO data set (SAHI slice names)"
    )
    p.add_argument("src", help="data YAML, data folder, COCO JSON, VisDrone split or VOC root")
    p.add_argument(
        "out", help="output folder (images/, labels/, data.yaml, <split>.json, tiles_<split>.json)"
    )
    p.add_argument("--split", nargs="+", default=["train"], help="split(s) to tile (default: train)")
    p.add_argument("--tile", type=int, default=640, help="tile side in pixels (after --scale)")
    p.add_argument("--overlap", type=float, default=0.2, help="overlap of neighbouring tiles, fraction")
    p.add_argument("--scale", type=float, default=1.0, help="resize images by this factor before tiling")
    p.add_argument("--min-visible", type=float, default=0.5, help="keep a cut box when this much is inside")
    p.add_argument("--keep-empty", type=float, default=0.1, help="fraction of empty tiles kept as negatives")
    p.add_argument("--cut-as-ignore", action="store_true", help="write dropped cut boxes as ignore regions")
    p.set_defaults(func=_tile)

    p = sub.add_parser("formats", help="list the registered data formats and their data YAML keys")
    p.set_defaults(func=_formats)


def _synth(args: argparse.Namespace) -> int:
    import time

    t0 = time.perf_counter()
    path = generate_synthetic(
        args.out,
        train=args.train,
        val=args.val,
        imgsz=args.imgsz,
        classes=args.classes,
        seed=args.seed,
        workers=args.workers,
    )
    print(f"wrote {path} ({args.train} train + {args.val} val images in {time.perf_counter() - t0:.1f} s)")
    return 0


def _convert(args: argparse.Namespace) -> int:

    out = convert(args.fmt_in, args.fmt_out, args.src, args.dst, split=args.split)
    print(f"wrote {out}")
    return 0


def _stats(args: argparse.Namespace) -> int:

    stats = dataset_stats(args.data, args.split)
    print(format_stats(stats))
    png = args.out or default_plot_path(args.data, args.split)
    print(f"plot: {plot_stats(stats, png, title=f'{args.data} [{args.split}]')}")
    return 0


def _tile(args: argparse.Namespace) -> int:
    job = TileJob(
        src=args.src, out=args.out, splits=args.split, tile=args.tile, overlap=args.overlap,
        scale=args.scale, min_visible=args.min_visible, keep_empty=args.keep_empty,
        cut_as_ignore=args.cut_as_ignore,
    )  # fmt: skip
    for split, c in tile_dataset(job).items():
        print(
            f"{split}: {c['images']} images -> {c['tiles']} tiles ({c['empty_kept']} empty kept, "
            f"{c['empty_dropped']} dropped), {c['boxes']} boxes; {c['data_yaml']}, {c['coco_json']}, "
            f"{c['tiles_json']}"
        )
    return 0


def _formats(args: argparse.Namespace) -> int:

    print(describe_formats())
    return 0
