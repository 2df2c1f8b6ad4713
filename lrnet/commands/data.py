"""`lrnet data synth|convert|stats`: make, convert and inspect detection data sets."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="synthetic data set, format conversion, statistics")
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

    p = sub.add_parser("convert", help="convert annotations between formats")
    p.add_argument("--from", dest="fmt_in", required=True, choices=["visdrone", "coco", "voc", "yolo"])
    p.add_argument("--to", dest="fmt_out", required=True, choices=["yolo", "coco"])
    p.add_argument("--split", default="train", help="split name (VOC set, YOLO YAML key, output folder name)")
    p.add_argument("src", help="VisDrone split folder, COCO JSON, VOC root or YOLO data YAML")
    p.add_argument("dst", help="output folder (or .json file for --to coco)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("stats", help="image/box counts and the AI-TOD object-size histogram")
    p.add_argument("data", help="data YAML, COCO JSON or data folder")
    p.add_argument("--split", default="train")
    p.add_argument("--out", default=None, help="PNG plot path (default: runs/stats/<data stem>_<split>.png)")
    p.set_defaults(func=_stats)


def _synth(args: argparse.Namespace) -> int:
    import time

    from lrnet.data.synthetic import generate_synthetic

    t0 = time.perf_counter()
    path = generate_synthetic(
        args.out, train=args.train, val=args.val, imgsz=args.imgsz, classes=args.classes, seed=args.seed,
        workers=args.workers,
    )  # fmt: skip
    print(f"wrote {path} ({args.train} train + {args.val} val images in {time.perf_counter() - t0:.1f} s)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from lrnet.data.convert import convert

    out = convert(args.fmt_in, args.fmt_out, args.src, args.dst, split=args.split)
    print(f"wrote {out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lrnet.data.stats import dataset_stats, format_stats, plot_stats

    stats = dataset_stats(args.data, args.split)
    print(format_stats(stats))
    png = args.out or Path("runs/stats") / f"{Path(args.data).stem}_{args.split}.png"
    print(f"plot: {plot_stats(stats, png, title=f'{args.data} [{args.split}]')}")
    return 0
