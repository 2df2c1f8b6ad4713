import numpy as np
import torch
from pycocotools.coco import COCO

from lrnet.data import DetectionDataset, build_dataloader, collate_fn


def _batches(loader, epoch):
    loader.set_epoch(epoch)
    return [
        (b["img"].clone(), b["bboxes"].clone(), b["batch_idx"].clone(), list(b["im_file"])) for b in loader
    ]


def test_loader_two_workers_layout_and_determinism(synth_small):
    torch.manual_seed(0)
    ds = DetectionDataset(synth_small, "train", imgsz=128, augment=True, seed=5, verbose=False)
    with_workers = build_dataloader(ds, batch_size=4, shuffle=True, workers=2, seed=5)
    batch = next(iter(with_workers))
    assert batch["img"].shape == (4, 3, 128, 128) and batch["img"].dtype == torch.uint8
    n = len(batch["cls"])
    assert batch["bboxes"].shape == (n, 4) and batch["batch_idx"].shape == (n,)
    assert batch["batch_idx"].dtype == torch.int64 and batch["cls"].dtype == torch.int64
    assert isinstance(batch["im_file"], list) and len(batch["ratio_pad"]) == 4
    a = _batches(with_workers, 3)
    b = _batches(build_dataloader(ds, batch_size=4, shuffle=True, workers=0, seed=5), 3)
    assert [x[3] for x in a] == [x[3] for x in b]
    for (ia, ba, ka, _), (ib, bb, kb, _) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(ba, bb) and torch.equal(ka, kb)
    assert [x[3] for x in _batches(with_workers, 4)] != [x[3] for x in a]  # reshuffled per epoch
    with_workers.close_mosaic()
    assert with_workers.sampler.mosaic is False and ds.mosaic is False


def test_eval_sample_ratio_pad_and_coco_gt(synth_small):
    ds = DetectionDataset(synth_small, "val", imgsz=96, augment=False, verbose=False)
    s = ds[1]
    (rh, rw), (padw, padh) = s["ratio_pad"]
    rec = ds.records[1]
    expected = rec.boxes * np.array([rw, rh, rw, rh], np.float32) + np.array(
        [padw, padh, padw, padh], np.float32
    )
    np.testing.assert_allclose(s["bboxes"].numpy(), expected, atol=1e-4)
    assert s["ori_shape"] == (128, 128)
    gt = ds.coco_gt()
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[s["image_id"]]))
    assert len(anns) == len(rec.boxes)
    _x, _y, w, h = anns[0]["bbox"]
    assert anns[0]["area"] == w * h or abs(anns[0]["area"] - w * h) < 1e-3
    assert ds.category_ids[int(rec.cls[0])] == anns[0]["category_id"]


def test_collate_concatenates_targets():
    def sample(value, cls, boxes, name, image_id):
        img = torch.full((3, 4, 4), value, dtype=torch.uint8)
        return {"img": img, "cls": torch.tensor(cls, dtype=torch.int64), "bboxes": boxes, "im_file": name,
                "image_id": image_id}  # fmt: skip

    samples = [
        sample(0, [1, 2], torch.ones(2, 4), "a", 1),
        sample(1, [], torch.zeros(0, 4), "b", 2),
        sample(1, [0], torch.ones(1, 4) * 2, "c", 3),
    ]
    b = collate_fn(samples)
    assert b["img"].shape == (3, 3, 4, 4)
    assert b["batch_idx"].tolist() == [0, 0, 2] and b["cls"].tolist() == [1, 2, 0]
    assert b["im_file"] == ["a", "b", "c"] and b["image_id"] == [1, 2, 3]


def test_greyed_ignore_regions_in_training(tmp_path):
    import json

    import cv2

    img = np.full((64, 64, 3), 200, np.uint8)
    (tmp_path / "im").mkdir()
    cv2.imwrite(str(tmp_path / "im" / "a.png"), img)
    gt = {
        "images": [{"id": 1, "file_name": "im/a.png", "width": 64, "height": 64}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 32], "iscrowd": 1, "area": 1024},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 40, 8, 8], "iscrowd": 0, "area": 64},
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    ds = DetectionDataset(tmp_path / "gt.json", imgsz=64, augment=False, grey_ignore=True, verbose=False)
    im = ds[0]["img"]
    assert (im[:, :32, :32] == 114).all() and (im[:, 40:, 40:] == 200).all()
    crowd = [a for a in ds.coco_gt()["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["bbox"] == [0, 0, 32, 32]
