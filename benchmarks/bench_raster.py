"""Peak memory and windows per second of `lrnet predict` streaming a large sparse GeoTIFF.

Writes two tiled, mostly empty GeoTIFFs (10000 and 40000 px a side by default: 0.3 GB and 4.8 GB of
RGB pixels if decoded whole; a few painted tiles each) and predicts each with `--slice 640 --overlap
0.2` (a random yolov8n checkpoint at imgsz 64, so the model costs little and the reading shows) in
one fresh process, resetting the peak before each (tests/fixtures/raster_memory.py). Prints each
raster's peak resident memory (VmHWM), windows, windows skipped as empty and windows per second.
Needs the extra `geo` (rasterio). Usage:
    PYTHONPATH=. python benchmarks/bench_raster.py [--sizes 10000 40000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.fixtures.predict_fixtures import make_checkpoint
from tests.fixtures.raster_memory import predict_peaks, sparse_survey_raster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 40000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = make_checkpoint(root / "w.pt", nc=2)
        rasters = []
        for size in args.sizes:
            t0 = time.perf_counter()
            rasters.append(sparse_survey_raster(root / f"sparse{size}.tif", size))
            print(f"wrote {size} x {size} px sparse GeoTIFF: {rasters[-1].stat().st_size / 1e3:.0f} kB "
                  f"in {time.perf_counter() - t0:.2f} s")  # fmt: skip
        runs = predict_peaks(rasters, weights, root / "runs")
    print("| raster (px) | decoded whole (GB) | peak RSS (MB) | windows | skipped empty | windows/s |")
    print("|---|---|---|---|---|---|")
    for size, r in zip(args.sizes, runs):
        print(
            f"| {size} x {size} | {size * size * 3 / 1e9:.1f} | {r['peak_kb'] / 1024:.0f} | {r['windows']} | "
            f"{r['windows_skipped']} | {r['windows_per_second']:.0f} |"
        )
    growth = (runs[-1]["peak_kb"] - runs[0]["peak_kb"]) / 1024
    print(f"peak growth from {args.sizes[0]} to {args.sizes[-1]} px: {growth:+.0f} MB"
          f"{'' if all(r['reset'] for r in runs) else ' (peaks cumulative: reset refused)'}")  # fmt: skip


if __name__ == "__main__":
    main()
