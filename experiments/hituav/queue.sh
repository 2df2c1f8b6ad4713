#!/usr/bin/env bash
# Train and score the HIT-UAV table seed by seed, both trainers interleaved, so that whatever time a
# machine has fills the paired comparisons first (parity pair, then lrnet-n). Runs kept in
# experiments/hituav/records are skipped, so rerunning on a fresh clone continues where the table is.
#
#   bash experiments/hituav/queue.sh [PEER_PYTHON] [SEEDS] [LRNET_ROWS]
#   defaults: ../peer-venv/bin/python, "0 1 2", "lrnet yolov8n-p2|lrnet-n"
# Needs prepare.py's data and the peer environment (../shared/peer/setup.sh). Each run is scored on
# test right after val (REAL.md's amendment of 2026-12-03); that output goes to runs/hituav/sealed.log,
# which nobody reads: report.py --split test reads the scores for the final table.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p runs/hituav
sealed=runs/hituav/sealed.log
peer=${1:-../peer-venv/bin/python}
seeds=${2:-0 1 2}
IFS='|' read -r -a rows <<< "${3:-lrnet yolov8n-p2|lrnet-n}"
export YOLO_OFFLINE=1
for seed in $seeds; do
  echo "=== $(date -u +%FT%TZ) ultralytics yolov8n-p2 seed $seed"
  for split in val test; do
    [ "$split" = val ] && log=/dev/stdout || log=$sealed
    "$peer" experiments/hituav/run_peer.py --rows 'ultralytics yolov8n-p2' --seeds "$seed" \
      --split "$split" --lrnet-python .venv/bin/python >> "$log" 2>&1
  done
  for row in "${rows[@]}"; do
    echo "=== $(date -u +%FT%TZ) $row seed $seed"
    .venv/bin/python experiments/hituav/run_lrnet.py --rows "$row" --seeds "$seed"
    .venv/bin/python experiments/hituav/run_lrnet.py --rows "$row" --seeds "$seed" --split test >> "$sealed" 2>&1
  done
done
echo "=== $(date -u +%FT%TZ) queue done; python experiments/hituav/report.py --split val rewrites the table"
