import dataclasses
import inspect
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from lrnet.data import dataset_stats, generate_synthetic, read_coco
from lrnet.data.synthetic import SynthJob, render_image
from lrnet.errors import ConfigError


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_pool_independent(tmp_path):
    a = generate_synthetic(tmp_path / "a", train=5, val=2, imgsz=96, seed=11, workers=1, verbose=False).parent
    b = generate_synthetic(tmp_path / "b", train=5, val=2, imgsz=96, seed=11, workers=2, verbose=False).parent
    fa, fb = _files(a), _files(b)
    assert fa == fb and len(fa) == 5 + 2 + 5 + 2 + 2  # images, labels, data.yaml, val_coco.json
    c = generate_synthetic(tmp_path / "c", train=5, val=2, imgsz=96, seed=12, workers=1, verbose=False).parent
    assert _files(c)["images/train/000000.jpg"] != fa["images/train/000000.jpg"]


def test_image_in_isolation_equals_full_run(tmp_path):
    root = generate_synthetic(tmp_path, train=4, val=1, imgsz=256, seed=2, workers=1, verbose=False).parent
    img, _boxes, cls = render_image(2, "train", 3, imgsz=256, nc=6)
    assert len(cls) > 0
    _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert (root / "images" / "train" / "000003.jpg").read_bytes() == buf.tobytes()
    rows = np.loadtxt(root / "labels" / "train" / "000003.txt", ndmin=2)
    assert rows[:, 0].astype(int).tolist() == cls.tolist()


def test_outputs_are_consistent(synth_small):
    cfg = yaml.safe_load(synth_small.read_text())
    assert cfg["names"] == ["vehicle", "truck", "ship", "plane"]
    coco = read_coco(synth_small.parent / "val_coco.json")
    stats = dataset_stats(synth_small, "val")
    assert len(coco) == stats["images"] == 4 and coco.num_boxes == stats["boxes"] > 0
    assert all(Path(r.im_file).is_file() for r in coco.records)


def test_size_distribution_is_aitod_like():
    sizes, classes = [], []
    for i in range(12):
        _, b, c = render_image(0, "train", i, imgsz=640, nc=6)
        sizes.append(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
        classes.append(c)
    s = np.concatenate(sizes)
    assert len(s) > 300
    assert 10 <= s.mean() <= 16, s.mean()
    assert (s < 32).mean() >= 0.8 and (s >= 32).mean() >= 0.01 and (s < 8).mean() >= 0.1
    assert len(np.unique(np.concatenate(classes))) == 6


def test_synth_job_declares_the_options_of_generate_synthetic():
    """`SynthJob` (the `lrnet data synth` flags) and `generate_synthetic` share names and defaults."""
    params = inspect.signature(generate_synthetic).parameters
    fields = {f.name: f.default for f in dataclasses.fields(SynthJob)}
    assert list(fields) == list(params)
    assert all(params[name].default == default for name, default in fields.items() if name != "out")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": 99}, "classes=99 is out of range; use [1, 8]"),
        ({"classes": 0}, "classes=0 is out of range"),
        ({"imgsz": 16}, "imgsz=16 is out of range; use [32, 16384]"),
        ({"train": -1}, "train=-1 is out of range"),
        ({"workers": 1000}, "workers=1000 is out of range"),
    ],
)
def test_bad_synth_options_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        generate_synthetic(tmp_path / "s", **{"train": 1, "val": 1, "imgsz": 64, "verbose": False, **kwargs})
    assert not (tmp_path / "s").exists()
