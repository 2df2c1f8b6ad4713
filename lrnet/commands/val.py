"""`lrnet val`: evaluate a checkpoint (or exported .onnx) on a data split under the AI-TOD or COCO protocol.

Prints AP, AP50, AP75 and the per-size APs, parameters and GFLOPs, and ms per image (pre-process,
inference, NMS); `--slice N` predicts every full image tile by tile and merges (sliced evaluation,
reporting tiles and seconds per image; `--max-det` then applies per tile); writes `pr_curve.png`,
`predictions.json` (COCO results) and `metrics.json`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `val` sub-command."""
    parser = subparsers.add_parser("val", help="evaluate weights on a data split", description=__doc__)
    parser.add_argument("--weights", required=True, help="lrnet checkpoint (.pt) or exported .onnx")
    parser.add_argument("--data", required=True, help="data YAML / COCO JSON / dataset folder")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--protocol", choices=["aitod", "coco"], default="aitod")
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input size (default: the training size, else 640)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--conf", type=float, default=0.001)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--max-det", type=int, default=None, help="default: 1500 (aitod), 300 (coco)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--per-class", action="store_true", help="print the AP of every class")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    sliced = parser.add_argument_group("sliced evaluation (large images, tile by tile)")
    sliced.add_argument(
        "--slice", type=int, default=0, metavar="N", help="predict N x N tiles of each full image"
    )
    sliced.add_argument("--overlap", type=float, default=0.2, help="tile overlap fraction")
    sliced.add_argument("--slice-full", action="store_true", help="also run the whole image, resized")
    sliced.add_argument("--merge", choices=["nms", "nmm", "greedy-nmm"], default="nms", help="tile merging")
    sliced.add_argument("--merge-metric", default="ios", help="match metric of the merge: ios or iou")
    sliced.add_argument("--merge-iou", type=float, default=0.5, help="match threshold of the merge")
    sliced.add_argument("--merge-agnostic", action="store_true", help="merge across classes")
    sliced.add_argument(
        "--merged-max-det",
        type=int,
        default=None,
        help="detections kept per merged image (default: --max-det's default)",
    )
    parser.add_argument("--project", default="runs/val")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.add_argument(
        "--nms-metric", default="iou", help="NMS on iou (default) or nwd (docs/SIMILARITY.md)"
    )
    parser.add_argument(
        "--nms-scale", type=float, default=0.0, help="NWD constant C in pixels for --nms-metric nwd (0: 12.8)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print the report (or one JSON object)."""
    import json

    from lrnet.engine.inference.validate_run import ValJob, format_report, run_validation

    job = ValJob(
        weights=args.weights, data=args.data, split=args.split, protocol=args.protocol, imgsz=args.imgsz,
        batch=args.batch, conf=args.conf, iou=args.iou, max_det=args.max_det, device=args.device,
        half=args.half, workers=args.workers, project=args.project, name=args.name,
        exist_ok=args.exist_ok, verbose=not args.json, slice_size=args.slice,
        overlap=args.overlap, slice_full=args.slice_full, merge=args.merge, merge_metric=args.merge_metric,
        merge_iou=args.merge_iou, merge_agnostic=args.merge_agnostic, merged_max_det=args.merged_max_det,
        nms_metric=args.nms_metric, nms_scale=args.nms_scale,
    )  # fmt: skip
    summary = run_validation(job)
    print(json.dumps(summary) if args.json else format_report(summary, per_class=args.per_class))
    return 0
