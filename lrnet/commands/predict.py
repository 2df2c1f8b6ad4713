"""`lrnet predict`: detect objects in images, folders, globs or videos and write annotated results.

Writes to runs/predict/<name>/: annotated images (or videos), `labels/<stem>.txt` (YOLO rows
`cls cx cy w h score`, normalised) with --save-txt, `predictions.json` (COCO results) with
--save-json: when --source is a data set (data YAML, COCO JSON, VOC root, ...) or --image-ids gives
a COCO JSON, image_id and category_id are the data set's, so `lrnet eval-json` scores the file;
otherwise image_id is the running index of the image and category_id the class index. `--weights W1 W2
...` draws each model's detections side by side on the same images (the paper's Fig. 14). `--slice N`
tiles large images (SAHI-style sliced inference). Rasters (GeoTIFF, with the extra `geo`) are read
window by window and can be written as map layers (--save-geojson, --save-gpkg); a folder of them is
resumable and splits with --shard K/N (`lrnet.jobs.predict_raster`). Images that cannot be decoded
are skipped with a warning and counted. The flags are the fields of `lrnet.jobs.predict.PredictJob`.
"""

from __future__ import annotations

import argparse

from lrnet.jobs.predict import PredictJob, run_predict
from lrnet.schema import add_option_flags, options_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `predict` sub-command."""
    add_option_flags(parser, PredictJob)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the prediction job and print the counts."""
    summary = run_predict(options_from_args(PredictJob, args))
    names = summary.get("skipped_files", [])[:3]
    first = f" ({', '.join(names)}{', ...' if summary['skipped'] > len(names) else ''})" if names else ""
    skipped = f", {summary['skipped']} unreadable images skipped{first}" if summary["skipped"] else ""
    rasters = ""
    if summary["rasters"] or summary["rasters_resumed"]:
        rasters = (
            f", {summary['rasters']} rasters ({summary['windows']} windows, {summary['windows_skipped']} "
            f"empty skipped; {summary['rasters_resumed']} finished before)"
        )
    print(summary["threads"])
    print(
        f"{summary['images']} images{rasters}, {summary['frames']} video frames, {summary['detections']} "
        f"detections{skipped}; results saved to {summary['save_dir']}"
    )
    return 0
