"""`lrnet predict`: detect objects in images, folders, globs or videos and write annotated results.

Writes to runs/predict/<name>/: annotated images (or videos), `labels/<stem>.txt` (YOLO rows
`cls cx cy w h score`, normalised) with --save-txt, `predictions.json` (COCO results) with
--save-json: when --source is a data set (data YAML, COCO JSON, VOC root, ...) or --image-ids gives
a COCO JSON, image_id and category_id are the data set's, so `lrnet eval-json` scores the file;
otherwise image_id is the running index of the image and category_id the class index. `--compare W1 W2 ...`
draws each model's detections side by side on the same images (the paper's Fig. 14). `--slice N`
tiles large images (SAHI-style sliced inference). Images that cannot be decoded are skipped with a
warning and counted.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `predict` sub-command."""
    parser = subparsers.add_parser("predict", help="detect objects and draw them", description=__doc__)
    parser.add_argument("--weights", nargs="+", help="checkpoint (.pt) or exported .onnx")
    parser.add_argument("--compare", nargs="+", metavar="W", help="two or more weights drawn side by side")
    parser.add_argument("--labels", nargs="+", help="titles of the --compare panels (default: file stems)")
    parser.add_argument("--source", required=True, help="image file, directory, glob or video")
    parser.add_argument("--imgsz", type=int, default=None, help="input size (default: training/export size)")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--max-det", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8, help="tiles per forward pass with --slice")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--slice", type=int, default=0, metavar="N", help="sliced inference with N x N tiles")
    parser.add_argument("--overlap", type=float, default=0.2, help="tile overlap fraction with --slice")
    parser.add_argument(
        "--no-full-image", action="store_true", help="with --slice: skip the whole-image pass"
    )
    parser.add_argument("--merge-iou", type=float, default=0.5, help="with --slice: threshold merging tiles")
    parser.add_argument("--save-txt", action="store_true")
    parser.add_argument("--save-json", action="store_true")
    parser.add_argument(
        "--image-ids", default="", metavar="JSON",
        help="with --save-json: COCO JSON (or file name -> id JSON) giving image and category ids",
    )  # fmt: skip
    parser.add_argument("--split", default="val", help="split to predict when --source is a data set")
    parser.add_argument("--merge", choices=["nms", "nmm", "greedy-nmm"], default="nms", help="with --slice")
    parser.add_argument("--merge-metric", default="ios", help="with --slice: ios or iou")
    parser.add_argument(
        "--merged-max-det", type=int, default=None, help="with --slice: per image (default 1500)"
    )
    parser.add_argument("--no-labels", action="store_true", help="draw boxes only")
    parser.add_argument("--project", default="runs/predict")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.add_argument(
        "--nms-metric",
        default="iou",
        help="NMS and tile merging on iou (default) or nwd (docs/SIMILARITY.md)",
    )
    parser.add_argument(
        "--nms-scale", type=float, default=0.0, help="NWD constant C in pixels for --nms-metric nwd (0: 12.8)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the flag combination, run the prediction job and print the counts."""
    from pathlib import Path

    from lrnet.engine.inference.predict_run import PredictJob, run_predict
    from lrnet.errors import ConfigError

    weights = args.compare or args.weights
    if not weights:
        raise ConfigError("give --weights W or --compare W1 W2 ...")
    if args.compare and len(args.compare) < 2:
        raise ConfigError("--compare needs two or more weights")
    if not args.compare and len(weights) > 1:
        raise ConfigError("several --weights: use --compare to draw them side by side")
    titles = args.labels or [Path(w).stem for w in weights]
    if len(titles) != len(weights):
        raise ConfigError(f"{len(titles)} --labels for {len(weights)} weights")
    job = PredictJob(
        weights=[str(w) for w in weights], titles=titles, source=args.source, imgsz=args.imgsz,
        conf=args.conf, iou=args.iou, max_det=args.max_det, batch=args.batch, device=args.device,
        slice_size=args.slice, overlap=args.overlap, full_image=not args.no_full_image,
        merge_iou=args.merge_iou, save_txt=args.save_txt, save_json=args.save_json,
        draw_labels=not args.no_labels, project=args.project, name=args.name, exist_ok=args.exist_ok,
        image_ids=args.image_ids, split=args.split, merge=args.merge, merge_metric=args.merge_metric,
        merged_max_det=args.merged_max_det,
        nms_metric=args.nms_metric, nms_scale=args.nms_scale,
    )  # fmt: skip
    summary = run_predict(job)
    names = summary.get("skipped_files", [])[:3]
    first = f" ({', '.join(names)}{', ...' if summary['skipped'] > len(names) else ''})" if names else ""
    skipped = f", {summary['skipped']} unreadable images skipped{first}" if summary["skipped"] else ""
    print(
        f"{summary['images']} images, {summary['frames']} video frames, {summary['detections']} detections"
        f"{skipped}; results saved to {summary['save_dir']}"
    )
    return 0
