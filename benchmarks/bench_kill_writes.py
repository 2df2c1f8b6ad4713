"""SIGKILL during checkpoint and ONNX writes, N times each: how many files are left unusable?

Prints one line per kind: kills, kills that landed during a write (a temporary file was left),
unusable files after a kill (must be 0), and the time of one write. The numbers are quoted in
docs/RELIABILITY.md. Usage: PYTHONPATH=. python benchmarks/bench_kill_writes.py --kills 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.robustness.kill_writer import kill_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for kind in ("checkpoint", "onnx"):
        with tempfile.TemporaryDirectory() as tmp:
            r = kill_loop(kind, Path(tmp), args.kills, seed=args.seed)
        print(
            f"{kind:<10} kills {r['kills']:>3}  during a write {r['mid_write']:>3}  "
            f"unusable {r['unusable']:>2}  one write {r['write_s']:.2f} s  {r['reasons'] or ''}"
        )


if __name__ == "__main__":
    main()
