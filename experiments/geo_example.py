"""docs/GEO.md's picture: map polygons in, a model trained on the raster's tiles, map polygons out.

Steps (each an ordinary lrnet command, run in a subprocess):
1. the 61 tree boxes of DeepForest's `OSBS_029.tif` (its CSV, pixel coordinates) become UTM polygons
   in a GeoPackage, as a GIS user would hold them;
2. `lrnet data tile` cuts the raster into tiles from those polygons;
3. `lrnet train` trains a small lrnet-n on the tiles for a few minutes (CPU);
4. `lrnet predict --save-geojson` predicts the whole raster window by window;
5. the GeoJSON polygons (map coordinates) are mapped back to pixels and drawn with the truth.

    python experiments/geo_example.py [--epochs 150] [--work runs/geo_example] [--out docs/geo_example.png]

Needs the `geo` extra. It shows the plumbing (both layers land on the same trees), not a tree detector:
the model is trained and drawn on the same raster.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyogrio.raw
import rasterio
import shapely

ROOT = Path(__file__).resolve().parents[1]
GEO = ROOT.parent / "shared" / "data" / "geotiff_deepforest"


def lrnet(*args: str) -> None:
    """Run one lrnet command; stop with its output when it fails."""
    cmd = [sys.executable, "-c", "import sys; from lrnet.cli import main; sys.exit(main())", *args]
    print("$ lrnet", " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def truth_polygons(raster: Path, csv_path: Path, out: Path) -> list[np.ndarray]:
    """Write the CSV's pixel boxes as map polygons (GeoPackage, replaced); return the pixel boxes."""
    with rasterio.open(raster) as src:
        t, crs = src.transform, src.crs.to_string()
    boxes = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            boxes.append(np.array([float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]))
    polys = []
    for x0, y0, x1, y1 in boxes:
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        polys.append(shapely.Polygon([t * c for c in corners]))
    wkb = np.array([shapely.to_wkb(p) for p in polys], dtype=object)
    labels = np.array(["tree"] * len(polys), dtype=object)
    out.unlink(missing_ok=True)
    pyogrio.raw.write(str(out), wkb, [labels], fields=["label"], geometry_type="Polygon", crs=crs)
    return boxes


def geojson_pixel_boxes(layer: Path, raster: Path) -> list[tuple[np.ndarray, float]]:
    """(pixel xyxy, score) of every polygon of a GeoJSON in the raster's CRS."""
    with rasterio.open(raster) as src:
        inverse = ~src.transform
    out = []
    for feature in json.loads(layer.read_text())["features"]:
        ring = np.array([inverse * tuple(p) for p in feature["geometry"]["coordinates"][0]])
        box = np.array([*ring.min(0), *ring.max(0)])
        out.append((box, float(feature["properties"]["score"])))
    return out


def draw(raster: Path, truth: list[np.ndarray], dets: list[tuple[np.ndarray, float]], out: Path) -> None:
    """Truth green, detections red (score >= 0.25), on the raster at 2x."""
    with rasterio.open(raster) as src:
        rgb = src.read([1, 2, 3]).transpose(1, 2, 0)
    img = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    for box in truth:
        x0, y0, x1, y1 = (2 * box).round().astype(int)
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 220, 0), 2)
    for box, score in dets:
        if score < 0.25:
            continue
        x0, y0, x1, y1 = (2 * box).round().astype(int)
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 255), 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), img)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--work", default="runs/geo_example")
    parser.add_argument("--out", default="docs/geo_example.png")
    args = parser.parse_args()
    work = (ROOT / args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    raster = GEO / "OSBS_029.tif"
    vector = work / "osbs_trees.gpkg"
    truth = truth_polygons(raster, GEO / "OSBS_029.csv", vector)
    tiles = work / "tiles"
    if not (tiles / "data.yaml").exists():
        lrnet("data", "tile", str(raster), str(tiles), "--vector", str(vector), "--class-field", "label",
              "--tile", "160", "--overlap", "0.5", "--keep-empty", "0")  # fmt: skip
    weights = work / "train" / "weights" / "last.pt"
    if not weights.exists():
        train = ["--data", str(tiles / "data.yaml"), "--model", "lrnet-n", "--imgsz", "160", "--batch", "8"]
        train += ["--epochs", str(args.epochs), "--workers", "0", "--close-mosaic", "5", "--nbs", "8"]
        lrnet("train", *train, "--val", "false", "--project", str(work), "--name", "train", "--exist-ok")
    lrnet("predict", "--weights", str(weights), "--source", str(raster), "--slice", "160",
          "--overlap", "0.25", "--imgsz", "160", "--save-geojson", "--project", str(work),
          "--name", "predict", "--exist-ok")  # fmt: skip
    dets = geojson_pixel_boxes(work / "predict" / "OSBS_029.geojson", raster)
    draw(raster, truth, dets, ROOT / args.out)


if __name__ == "__main__":
    main()
