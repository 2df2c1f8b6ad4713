"""One pixel rule for every decode, one minimum tile side for predict, val and tile.

The size that counts is the one in the image file's own header, never the one an annotation file
claims, and the size after `scale` is checked too, before OpenCV allocates anything. Each case
guards `cv2.imread` / `cv2.resize` so that a decode or a resize the rule should have prevented fails
the test at once instead of allocating gigabytes.
"""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from lrnet.cli import main
from lrnet.data.images import decode_image
from lrnet.errors import ConfigError, DataError
from tests.robustness import hostile

pytestmark = pytest.mark.timeout(120)

LRNET = Path(__file__).resolve().parents[2] / "lrnet"
LIMIT = 400_000_000  # the default pixel limit


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A 24000 x 24000 PNG (576 Mpx decoded, ~70 kB on disk)."""
    return hostile.huge_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 24000, 24000)


@pytest.fixture
def guarded(monkeypatch, bomb):
    """`cv2.imread` of the bomb and any `cv2.resize` above the limit fail the test instead of allocating."""
    real_imread, real_resize = cv2.imread, cv2.resize

    def imread(path, *args, **kwargs):
        if Path(path).resolve() == bomb.resolve():
            raise AssertionError(f"{path} was decoded: its header says 576 Mpx")
        return real_imread(path, *args, **kwargs)

    def resize(img, dsize, *args, **kwargs):
        if dsize is not None and int(dsize[0]) * int(dsize[1]) > LIMIT:
            raise AssertionError(f"cv2.resize was asked for {dsize[0]} x {dsize[1]} pixels")
        return real_resize(img, dsize, *args, **kwargs)

    monkeypatch.setattr(cv2, "imread", imread)
    monkeypatch.setattr(cv2, "resize", resize)


def _coco(folder: Path, images: dict[str, tuple[int, int]]) -> Path:
    """A COCO JSON in `folder` listing `images` (file name -> the (width, height) it claims), one box each."""
    entries = [
        {"id": i + 1, "file_name": n, "width": w, "height": h} for i, (n, (w, h)) in enumerate(images.items())
    ]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [8, 8, 16, 16]} for i in range(len(images))
    ]
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]  # as many as the tiny model's classes
    path = folder / "train.json"
    path.write_text(json.dumps({"images": entries, "annotations": anns, "categories": categories}))
    return path


def _good(path: Path, side: int = 64) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8))
    return path


def test_tile_skips_an_image_whose_header_is_a_bomb_whatever_the_json_claims(tmp_path, bomb, guarded, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _good(src / "good.png")
    (src / "bomb.png").symlink_to(bomb)
    coco = _coco(src, {"good.png": (64, 64), "bomb.png": (64, 64)})  # the JSON lies about the bomb
    out = tmp_path / "tiles"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["data", "tile", str(coco), str(out), "--tile", "32", "--keep-empty", "1"]) == 0
    messages = [str(w.message) for w in caught]
    assert any("bomb.png" in m and "24000 x 24000" in m and "Mpx" in m for m in messages), messages
    assert "1 unreadable images skipped" in capsys.readouterr().out
    tiles = json.loads((out / "tiles_train.json").read_text())["tiles"]
    assert tiles and {Path(t["source"]).name for t in tiles} == {"good.png"}


def test_tile_refuses_a_scale_above_the_limit_before_resizing(tmp_path, guarded, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _good(src / "good.png")
    hostile.huge_png(src / "big.png", 4000, 4000)  # 16 Mpx: fine as it is, 4096 Mpx scaled by 16
    coco = _coco(src, {"good.png": (64, 64), "big.png": (4000, 4000)})
    out = tmp_path / "tiles"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["data", "tile", str(coco), str(out), "--tile", "512", "--scale", "16"]) == 0
    messages = [str(w.message) for w in caught]
    assert any("big.png" in m and "scaled by 16 is 64000 x 64000" in m for m in messages), messages
    assert "1 unreadable images skipped" in capsys.readouterr().out
    tiles = json.loads((out / "tiles_train.json").read_text())["tiles"]
    assert {Path(t["source"]).name for t in tiles} == {"good.png"}
    assert tiles[0]["scale"] == [16.0, 16.0]  # the good image was scaled: 64 px -> 1024 px


def test_tile_with_every_image_refused_is_one_line_naming_them(tmp_path, guarded, capsys):
    src = tmp_path / "src"
    src.mkdir()
    hostile.huge_png(src / "big.png", 4000, 4000)
    coco = _coco(src, {"big.png": (4000, 4000)})
    with pytest.warns(UserWarning, match="scaled by 16"):
        assert main(["data", "tile", str(coco), str(tmp_path / "t"), "--scale", "16"]) == 2
    err = [line for line in capsys.readouterr().err.split("\n") if "error" in line]  # progress bars aside
    assert len(err) == 1 and "no tile was written" in err[0] and "big.png" in err[0], err


def test_decode_image_checks_the_scaled_size_before_resizing(tmp_path, guarded):
    from lrnet.data.images import scaled_size

    big = hostile.huge_png(tmp_path / "big.png", 4000, 4000)
    with pytest.raises(DataError, match=r"big.png: 4000 x 4000 scaled by 16 is 64000 x 64000 = 4,096 Mpx"):
        decode_image(big, scale=16)
    with pytest.raises(DataError, match="scaled by 2"):
        decode_image(big, max_pixels=32_000_000, scale=2)  # 64 Mpx after scaling, 16 Mpx before
    assert decode_image(_good(tmp_path / "g.png", 12), scale=0.25).shape == (3, 3, 3)
    assert decode_image(tmp_path / "g.png", scale=1 / 24).shape == (1, 1, 3)  # 0.5 px: at least 1
    assert scaled_size(4000, 3000, 16) == (64000, 48000) and scaled_size(5, 7, 1.0) == (5, 7)


def test_sliced_val_skips_a_bomb_the_json_calls_small(tmp_path, bomb, guarded, tiny_weights, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _good(src / "good.png")
    (src / "bomb.png").symlink_to(bomb)
    coco = _coco(src, {"good.png": (64, 64), "bomb.png": (64, 64)})
    args = ["val", "--weights", str(tiny_weights), "--data", str(coco), "--split", "train", "--imgsz", "64"]
    with pytest.warns(UserWarning, match=r"bomb.png.*Mpx"):
        assert main([*args, "--slice", "32", "--project", str(tmp_path / "v"), "--name", "x"]) == 0


def test_every_decode_in_lrnet_goes_through_decode_image():
    """No module but lrnet/data/images.py calls cv2.imread or cv2.imdecode: every decode passes the rule."""
    offenders = []
    for path in LRNET.rglob("*.py"):
        if path == LRNET / "data" / "images.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("imread", "imdecode", "imreadmulti"):
                offenders.append(f"{path.relative_to(LRNET.parent)}:{node.lineno} {node.attr}")
    assert not offenders, offenders


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--weights", "{w}", "--source", "{images}", "--slice", "1"],
        ["predict", "--weights", "{w}", "--source", "{images}", "--slice", "31"],
        ["val", "--weights", "{w}", "--data", "{data}", "--slice", "16"],
        ["data", "tile", "{data}", "{tmp}/t", "--tile", "16"],
        ["data", "tile", "{data}", "{tmp}/t", "--tile", "31"],
    ],
)
def test_one_minimum_tile_side_for_predict_val_and_tile(args, tmp_path, tiny_data, tiny_weights, capsys):
    files = {
        "w": tiny_weights,
        "images": tiny_data.parent / "images" / "val",
        "data": tiny_data,
        "tmp": tmp_path,
    }
    argv = [a.format(**files) for a in args]
    assert main([*argv, *(["--project", str(tmp_path / "p")] if argv[0] != "data" else [])]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "is below the smallest tile side 32" in err[0], err
    assert not (tmp_path / "t").exists() and not (tmp_path / "p").exists()


def test_the_smallest_tile_side_is_accepted_everywhere():
    from lrnet.data.tiling import TileJob
    from lrnet.ops.slicing import MIN_SLICE, SliceConfig

    assert TileJob("s", "o", tile=MIN_SLICE).tile == SliceConfig(slice=MIN_SLICE).slice == 32
    assert TileJob("s", "o", tile=640.0).tile == 640 and isinstance(TileJob("s", "o", tile=640.0).tile, int)
    for bad in (MIN_SLICE - 1, 640.5):
        with pytest.raises(ConfigError, match=f"tile={bad}"):
            TileJob("s", "o", tile=bad)
