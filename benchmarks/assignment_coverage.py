"""How many candidate anchors each ground-truth box gets, by AI-TOD size bin, with and without
`assign_outside` (docs/SIMILARITY.md). No training: the assigner's candidate test on the labels.

    PYTHONPATH=. .venv/bin/python benchmarks/assignment_coverage.py \
        --data runs/data/synthetic-n500-v100-s256-seed0/data.yaml --imgsz 256
"""

from __future__ import annotations

import argparse

import torch

from lrnet.data import load_dataset_source
from lrnet.losses.assigner import TaskAlignedAssigner
from lrnet.nn.anchors import make_anchors
from lrnet.training.similarity_setup import training_box_sizes

BINS = (
    ("very tiny (<8)", 0, 8),
    ("tiny (8-16)", 8, 16),
    ("small (16-32)", 16, 32),
    ("medium+ (>=32)", 32, 1e9),
)
LEVELS = {"P3-P5 (yolov8n)": [8, 16, 32], "P2-P5 (lrnet-n)": [4, 8, 16, 32]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--topk", type=int, default=10)
    args = parser.parse_args()
    source = load_dataset_source(args.data, args.split, verbose=False)
    boxes = []
    for r in source.records:  # boxes at the training scale (long side imgsz; square images need no padding)
        if len(r.boxes):
            boxes.append(
                torch.as_tensor(r.boxes, dtype=torch.float32) * (args.imgsz / max(r.width, r.height))
            )
    gt = torch.cat(boxes)
    sizes = training_box_sizes(source.records, args.imgsz)
    side = sizes.prod(1).sqrt()
    print(f"{gt.shape[0]} boxes of {args.data} [{args.split}] at imgsz {args.imgsz}; topk {args.topk}")
    print("| levels | outside | " + " | ".join(f"{b[0]}: no anchor / mean anchors" for b in BINS) + " |")
    print("|---|---|" + "---|" * len(BINS))
    for name, strides in LEVELS.items():
        feats = [torch.zeros(1, 1, args.imgsz // s, args.imgsz // s) for s in strides]
        points, stride_t = make_anchors(feats, strides)
        anc = points * stride_t
        for outside in (False, True):
            assigner = TaskAlignedAssigner(topk=args.topk, outside=outside)
            count = torch.cat(
                [
                    assigner._candidates(anc, chunk[None], torch.ones(1, chunk.shape[0], dtype=torch.bool))[
                        0
                    ].sum(-1)
                    for chunk in gt.split(512)
                ]
            )
            cells = []
            for _, lo, hi in BINS:
                sel = (side >= lo) & (side < hi)
                n = int(sel.sum())
                if not n:
                    cells.append("-")
                    continue
                none = 100 * float((count[sel] == 0).float().mean())
                cells.append(f"{none:.1f} % / {float(count[sel].float().mean()):.1f} (n={n})")
            print(f"| {name} | {'yes' if outside else 'no'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
