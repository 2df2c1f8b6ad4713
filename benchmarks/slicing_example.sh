#!/usr/bin/env bash
# The measured example of docs/SLICING.md: full-image resize vs sliced prediction vs tile training
# on synthetic 2048 px images: both models train on the same two 2048 px images with the same budget
# (the same number of IMGSZ px training samples and optimizer steps).
# Usage: benchmarks/slicing_example.sh OUT_DIR   (CPU: about 20 minutes on a busy 2-core machine)
set -euo pipefail
OUT=${1:-runs/slicing_example}
LRNET=${LRNET:-python -m lrnet.cli}
IMGSZ=${IMGSZ:-256}
N_TRAIN=${N_TRAIN:-2}
mkdir -p "$OUT"
cd "$OUT"
COMMON=(--model yolov8n --imgsz $IMGSZ --batch 4 --nbs 4 --val false --plots false --workers 0 --device cpu
        --warmup-epochs 0 --warmup-min-iters 10 --close-mosaic 0 --exist-ok true)
[ -d synth2048 ] || $LRNET data synth --out synth2048 --imgsz 2048 --train 16 --val 4 --classes 2 --workers 2
ls "$PWD"/synth2048/images/train/* | head -n "$N_TRAIN" > synth2048/train_subset.txt
printf 'path: .\ntrain: train_subset.txt\nval: images/val\nnames: [vehicle, truck]\n' > synth2048/subset.yaml
[ -d tiles ] || $LRNET data tile synth2048/subset.yaml tiles --split train --tile $IMGSZ --overlap 0.2 --keep-empty 0.1
TILES=$(ls tiles/images/train | wc -l)
EPOCHS_FULL=$(( (TILES + N_TRAIN / 2) / N_TRAIN ))  # N_TRAIN images per epoch: as many samples as 1 tile epoch
echo "tiles: $TILES; full-image epochs: $EPOCHS_FULL (x$N_TRAIN images) vs 1 tile epoch"
( time OMP_NUM_THREADS=1 $LRNET train "${COMMON[@]}" --data synth2048/subset.yaml --epochs $EPOCHS_FULL \
    --project runs --name full ) > train_full.log 2>&1 &
( time OMP_NUM_THREADS=1 $LRNET train "${COMMON[@]}" --data tiles/data.yaml --epochs 1 \
    --project runs --name tiles ) > train_tiles.log 2>&1 &
wait
VAL=(--data synth2048/data.yaml --imgsz $IMGSZ --batch 8 --json --exist-ok)
$LRNET val --weights runs/full/weights/last.pt "${VAL[@]}" --project val --name a_full > a_full.json
$LRNET val --weights runs/full/weights/last.pt "${VAL[@]}" --slice $IMGSZ --overlap 0.2 --project val --name b_sliced > b_sliced.json
$LRNET val --weights runs/tiles/weights/last.pt "${VAL[@]}" --slice $IMGSZ --overlap 0.2 --project val --name c_tiles_sliced > c_tiles_sliced.json
$LRNET val --weights runs/tiles/weights/last.pt "${VAL[@]}" --project val --name d_tiles_full > d_tiles_full.json
python - <<'PY'
import json
rows = [("a", "full-image model, whole image resized", "a_full.json"),
        ("b", "full-image model, sliced tiles", "b_sliced.json"),
        ("c", "tile-trained model, sliced tiles", "c_tiles_sliced.json"),
        ("d", "tile-trained model, whole image resized (control)", "d_tiles_full.json")]
print("| run | setting | AP | AP50 | APvt | APt | APs | tiles | s/image |")
print("|---|---|---|---|---|---|---|---|---|")
for key, text, f in rows:
    s = json.load(open(f)); m = s["metrics"]; sl = s.get("slice") or {}
    pct = lambda k: f"{100 * m[k]:.2f}" if m.get(k, -1) >= 0 else "-"
    print(f"| {key} | {text} | {pct('AP')} | {pct('AP50')} | {pct('APvt')} | {pct('APt')} | {pct('APs')} | "
          f"{sl.get('tiles', s['images'])} | {sl.get('seconds_per_image', float('nan')):.2f} |")
PY
