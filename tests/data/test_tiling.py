"""Dataset tiling on real airborne pixels (deepforest_voc) and hostile inputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lrnet.data.formats import load_dataset_source
from lrnet.data.tiling import TileJob, keep_empty_tile, tile_dataset, tile_labels
from lrnet.errors import ConfigError, InputFileNotFoundError

REPO = Path(__file__).resolve().parents[2]
DEEPFOREST = REPO.parent.parent / "shared" / "data" / "deepforest_voc"
if not DEEPFOREST.is_dir():
    DEEPFOREST = Path("/work/shared/data/deepforest_voc")
needs_data = pytest.mark.skipif(not DEEPFOREST.is_dir(), reason="shared/data/deepforest_voc not present")


def _visible(box, win):
    """Visible fraction of `box` inside `win` (plain Python, independent of lrnet)."""
    ix = max(0.0, min(box[2], win[2]) - max(box[0], win[0]))
    iy = max(0.0, min(box[3], win[3]) - max(box[1], win[1]))
    return ix * iy / ((box[2] - box[0]) * (box[3] - box[1]))


@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiled") / "set"
    job = TileJob(
        str(DEEPFOREST), str(out), tile=512, overlap=0.2, min_visible=0.5, keep_empty=1.0, verbose=False
    )
    return out, tile_dataset(job)["train"]


@needs_data
def test_tiles_keep_every_box_once_and_map_back_within_1px(tiled):
    out, counts = tiled
    src = load_dataset_source(DEEPFOREST, "train", verbose=False)
    by_file = {Path(r.im_file).resolve(): r for r in src.records}
    tiles = json.loads((out / "tiles_train.json").read_text())["tiles"]
    tiled_src = load_dataset_source(out / "data.yaml", "train", verbose=False)
    labels = {Path(r.im_file).name: r for r in tiled_src.records}
    assert len(tiles) == len(labels) == counts["tiles"]
    seen = {id(r): np.zeros(len(r.boxes), int) for r in src.records}
    for t in tiles:
        r = by_file[Path(t["source"]).resolve()]
        x0, y0, x1, y1 = t["window"]
        assert t["file"].startswith(f"{Path(r.im_file).stem}_{x0}_{y0}_{x1}_{y1}.")  # SAHI slice name
        got = labels[t["file"]]
        assert (got.width, got.height) == (x1 - x0, y1 - y0)
        mapped = got.boxes.astype(np.float64) + np.array([x0, y0, x0, y0])
        want = [
            (k, [max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1)])
            for k, b in enumerate(r.boxes.tolist())
            if _visible(b, (x0, y0, x1, y1)) >= 0.5
        ]
        assert len(mapped) == len(want), t["file"]  # exactly once per tile it lies in
        used = set()
        for k, clipped in want:
            d = np.abs(mapped - clipped).max(1)
            j = int(np.argmin(d))
            assert d[j] <= 1.0 and j not in used, (t["file"], k)
            used.add(j)
            seen[id(r)][k] += 1
    # every gt box is at least min-visible inside some tile, so each appears at least once
    assert all((s >= 1).all() for s in seen.values())
    assert sum(len(r.boxes) for r in src.records) == 951


@needs_data
def test_tile_pixels_are_the_source_window(tiled):
    out, _ = tiled
    t = json.loads((out / "tiles_train.json").read_text())["tiles"][3]
    tile = cv2.imread(str(out / "images" / "train" / t["file"]))
    src = cv2.imread(t["source"])
    x0, y0, x1, y1 = t["window"]
    diff = np.abs(tile.astype(int) - src[y0:y1, x0:x1].astype(int))
    assert diff.mean() < 3  # JPEG re-encoding only


@needs_data
def test_tiling_is_deterministic_and_coco_matches_yolo(tiled, tmp_path):
    out, _ = tiled
    again = tmp_path / "again"
    tile_dataset(TileJob(str(DEEPFOREST), str(again), tile=512, overlap=0.2, keep_empty=1.0, verbose=False))

    def digest(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".txt", ".jpg")
        }

    assert digest(out) == digest(again)
    coco = json.loads((out / "train.json").read_text())
    yolo = load_dataset_source(out / "data.yaml", "train", verbose=False)
    assert len(coco["images"]) == len(yolo) and len(coco["annotations"]) == yolo.num_boxes


@needs_data
def test_scale_and_cut_as_ignore(tmp_path):
    out = tmp_path / "half"
    c = tile_dataset(
        TileJob(str(DEEPFOREST), str(out), tile=320, overlap=0.2, scale=0.5, min_visible=0.9,
                cut_as_ignore=True, keep_empty=0.0, verbose=False)
    )["train"]  # fmt: skip
    assert c["empty_kept"] == 0 and c["tiles"] > 0
    tiles = json.loads((out / "tiles_train.json").read_text())["tiles"]
    t = next(t for t in tiles if t["window"][0] > 0)
    x0, y0, x1, _ = t["window"]
    assert abs((x1 - x0) - 640) <= 1  # 320 px of the half-size image = 640 source px
    tiled = load_dataset_source(out / "data.yaml", "train", verbose=False)
    assert sum(len(r.ignore) for r in tiled.records) > 0  # cut boxes became ignore regions
    src = {
        Path(r.im_file).resolve(): r for r in load_dataset_source(DEEPFOREST, "train", verbose=False).records
    }
    r = src[Path(t["source"]).resolve()]
    got = next(g for g in tiled.records if Path(g.im_file).name == t["file"])
    for b in got.boxes.astype(np.float64) / 0.5 + [x0, y0, x0, y0]:
        assert np.abs(r.boxes - b).max(1).min() <= 2.0  # whole boxes (>= 0.9 visible) map back


def test_tile_labels_hand_worked():
    boxes = np.array([[90, 10, 110, 30], [10, 10, 20, 20]], float)  # first box half in each tile
    windows = [(0, 0, 100, 100), (100, 0, 200, 100)]
    ignore = np.array([[0, 50, 150, 60]])
    tiles = tile_labels(boxes, np.array([0, 1]), ignore, windows, min_visible=0.6, cut_as_ignore=True)
    assert tiles[0].boxes.tolist() == [[10, 10, 20, 20]] and tiles[0].cls.tolist() == [1]
    assert tiles[0].ignore.tolist() == [[0, 50, 100, 60], [90, 10, 100, 30]]
    assert tiles[1].boxes.shape == (0, 4) and tiles[1].ignore.tolist() == [[0, 50, 50, 60], [0, 10, 10, 30]]
    half = tile_labels(boxes, np.array([0, 1]), np.zeros((0, 4)), [(0, 0, 100, 100)], min_visible=0.5)
    assert half[0].boxes.tolist() == [[90, 10, 100, 30], [10, 10, 20, 20]]  # exactly 0.5 visible is kept


def test_keep_empty_fraction_is_deterministic():
    names = [f"img_{i}_0_640_640" for i in range(4000)]
    kept = [keep_empty_tile(n, 0.25) for n in names]
    assert kept == [keep_empty_tile(n, 0.25) for n in names]
    assert 0.2 < np.mean(kept) < 0.3
    assert not any(keep_empty_tile(n, 0.0) for n in names) and all(keep_empty_tile(n, 1.0) for n in names)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"tile": 0}, "tile=0"),
        ({"overlap": 1.0}, "overlap=1.0"),
        ({"min_visible": 1.5}, "min_visible=1.5"),
        ({"keep_empty": -0.1}, "keep_empty=-0.1"),
        ({"scale": 0}, "scale=0"),
        ({"scale": float("nan")}, "scale=nan"),
        ({"splits": []}, "splits"),
    ],
)
def test_bad_options_raise_config_error(kwargs, word, tmp_path):
    with pytest.raises(ConfigError, match=word):
        TileJob(str(tmp_path), str(tmp_path / "o"), **kwargs)


@needs_data
def test_refuses_non_empty_output_and_missing_source(tmp_path, tiled):
    out, _ = tiled
    with pytest.raises(ConfigError, match="already holds files"):
        tile_dataset(TileJob(str(DEEPFOREST), str(out), verbose=False))
    with pytest.raises(InputFileNotFoundError, match="nope"):
        tile_dataset(TileJob(str(tmp_path / "nope"), str(tmp_path / "o"), verbose=False))
    with pytest.raises(ConfigError, match=r"contains the input file .*data\.yaml"):  # OUT over its source
        tile_dataset(TileJob(str(out), str(out), verbose=False))


def test_cli_bad_value_is_one_line_exit_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "lrnet.cli", "data", "tile", str(tmp_path), str(tmp_path / "o"),
         "--overlap", "1.5"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "overlap=1.5" in r.stderr


def test_cli_flags_make_the_tile_job(monkeypatch):
    """`lrnet data tile`'s arguments are `TileJob`'s fields (`--split` fills `splits`); a bare
    `--cut-as-ignore` before SRC leaves SRC and OUT positional."""
    from lrnet.cli import main

    jobs = []
    monkeypatch.setattr("lrnet.commands.data.tile_dataset", lambda job: jobs.append(job) or {})
    argv = ["data", "tile", "--cut-as-ignore", "src", "out", "--split", "train", "val", "--overlap", "0.5"]
    assert main(argv) == 0
    assert jobs == [TileJob("src", "out", splits=["train", "val"], overlap=0.5, cut_as_ignore=True)]
    assert main(["data", "tile", "src", "out", "--tile", "320"]) == 0
    assert jobs[-1] == TileJob("src", "out", tile=320)


@needs_data
def test_tiled_set_trains_with_lrnet_train(tmp_path):
    from lrnet.training.trainer import train

    voc = tmp_path / "voc"  # the two 400 x 400 images
    for sub in ("Annotations", "JPEGImages"):
        (voc / sub).mkdir(parents=True)
    for stem in ("OSBS_029", "SOAP_061"):
        (voc / "Annotations" / f"{stem}.xml").symlink_to(DEEPFOREST / "Annotations" / f"{stem}.xml")
        (voc / "JPEGImages" / f"{stem}.jpg").symlink_to(DEEPFOREST / "JPEGImages" / f"{stem}.jpg")
    tile_dataset(TileJob(str(voc), str(tmp_path / "tiles"), splits=["train"], tile=160, verbose=False))
    run = train(
        model="yolov8n", data=str(tmp_path / "tiles" / "data.yaml"), epochs=1, imgsz=64, batch=8,
        workers=0, device="cpu", val=False, plots=False, project=str(tmp_path), name="t",
    )  # fmt: skip
    assert (run.save_dir / "weights" / "last.pt").is_file()
