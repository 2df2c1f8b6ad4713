"""faster-coco-eval (the `fast-eval` extra) against pycocotools: the same arrays, or it must not be used."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from lrnet.errors import ConfigError
from lrnet.eval.coco_metrics import cocoeval_backend, evaluate_coco

SAMPLE = Path("/work/shared/data/visdrone_eval_sample")
needs_fast = pytest.mark.skipif(
    importlib.util.find_spec("faster_coco_eval") is None,
    reason="faster-coco-eval is not installed (pip install 'lrnet[fast-eval]')",
)


def tiny_object_set(seed: int = 0, n_images: int = 25) -> tuple[dict, list[dict]]:
    """Ground truth with objects of 2-60 px in 3 classes, crowd regions and an image without objects;
    detections: jittered hits, duplicates, misses and false positives with random scores."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, n_images + 1):
        images.append({"id": img_id, "width": 320, "height": 256, "file_name": f"{img_id}.png"})
        n = 0 if img_id == n_images else int(rng.integers(1, 12))
        for _ in range(n):
            w, h = rng.uniform(2, 60, size=2)
            x, y = rng.uniform(0, 320 - w), rng.uniform(0, 256 - h)
            cat = int(rng.integers(1, 4))
            crowd = int(rng.random() < 0.08)
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat, "bbox": [x, y, w, h],
                         "area": float(w * h), "iscrowd": crowd})  # fmt: skip
            for _ in range(int(rng.integers(0, 3))):  # 0: a miss; 2: a duplicate
                jx, jy, jw, jh = rng.normal(0, 0.07, size=4) * [w, h, w, h]
                box = [x + jx, y + jy, max(w + jw, 0.5), max(h + jh, 0.5)]
                dets.append(
                    {"image_id": img_id, "category_id": cat, "bbox": box, "score": float(rng.random())}
                )
        for _ in range(int(rng.integers(0, 6))):  # false positives anywhere, any class
            w, h = rng.uniform(2, 40, size=2)
            box = [float(rng.uniform(0, 300)), float(rng.uniform(0, 240)), float(w), float(h)]
            dets.append({"image_id": img_id, "category_id": int(rng.integers(1, 4)), "bbox": box,
                         "score": float(rng.random())})  # fmt: skip
    cats = [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}, {"id": 3, "name": "bicycle"},
            {"id": 4, "name": "never seen"}]  # fmt: skip
    return {"images": images, "annotations": anns, "categories": cats}, dets


def assert_same(a, b):
    np.testing.assert_allclose(a.precision, b.precision, rtol=0, atol=1e-12)
    for key, value in a.metrics.items():
        if key == "per_class":
            assert value.keys() == b.metrics[key].keys()
            np.testing.assert_allclose(list(value.values()), list(b.metrics[key].values()), atol=1e-12)
        else:
            assert value == pytest.approx(b.metrics[key], abs=1e-12), key


@needs_fast
@pytest.mark.parametrize("protocol", ["aitod", "coco"])
@pytest.mark.parametrize("seed", [0, 1])
def test_faster_coco_eval_matches_pycocotools(protocol, seed):
    gt, dets = tiny_object_set(seed)
    fast = evaluate_coco(gt, dets, protocol, backend="faster-coco-eval")
    ref = evaluate_coco(gt, dets, protocol, backend="pycocotools")
    assert (fast.backend, ref.backend) == ("faster-coco-eval", "pycocotools")
    assert 0.05 < ref.metrics["AP"] < 0.95  # neither trivial nor empty: the comparison can fail
    assert ref.metrics["per_class"]["never seen"] == -1.0
    assert_same(fast, ref)


@needs_fast
def test_faster_coco_eval_matches_on_real_visdrone_and_empty_results():
    gt = SAMPLE / "gt_coco.json"
    for dets in (SAMPLE / "detections_coco.json", []):
        assert_same(
            evaluate_coco(gt, dets, "aitod", backend="faster-coco-eval"),
            evaluate_coco(gt, dets, "aitod", backend="pycocotools"),
        )


def test_auto_falls_back_to_pycocotools_and_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # as if not installed
    assert cocoeval_backend("auto")[0] == "pycocotools"
    gt, dets = tiny_object_set(2, n_images=4)
    assert evaluate_coco(gt, dets).backend == "pycocotools"
    with pytest.raises(ConfigError, match=r"lrnet\[fast-eval\]"):
        cocoeval_backend("faster-coco-eval")
    with pytest.raises(ConfigError, match="unknown COCOeval backend 'cocoapi'"):
        evaluate_coco(gt, dets, backend="cocoapi")


@needs_fast
def test_auto_prefers_faster_coco_eval_when_installed():
    assert cocoeval_backend()[0] == "faster-coco-eval"
