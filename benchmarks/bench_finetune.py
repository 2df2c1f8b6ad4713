"""Fine-tuning from a checkpoint vs training from scratch, on the built-in synthetic set.

1. Pre-train on the synthetic set of generator seed A (`--pre-epochs`).
2. Fine-tune from that checkpoint on the set of seed B (other images, same classes) for `--ft-epochs`.
3. Train from scratch on seed B for `--scratch-epochs`.
Prints the AP per epoch of both runs on seed B's val split (epoch 0 of the fine-tune = the
checkpoint before any step), the scratch epochs needed to reach the fine-tune's AP after
`--ft-epochs`, and their ratio; writes results.json and finetune_curves.png to `--out`.

Usage: .venv/bin/python benchmarks/bench_finetune.py [--model yolov8n --imgsz 160 --pre-epochs 12]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def ap_per_epoch(save_dir: Path, metric: str) -> list[float]:
    """The validation `metric` of every epoch from a run's results.csv."""
    from lrnet.engine.training.plots import read_results_csv

    header, rows = read_results_csv(save_dir / "results.csv")
    col = header.index(f"metrics/{metric}")
    return [row[col] for row in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="yolov8n")
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--train", type=int, default=96, help="synthetic train images per seed")
    p.add_argument("--val", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--pre-epochs", type=int, default=12)
    p.add_argument("--ft-epochs", type=int, default=3)
    p.add_argument("--scratch-epochs", type=int, default=12)
    p.add_argument("--seed-a", type=int, default=0, help="synthetic generator seed of the pre-training set")
    p.add_argument("--seed-b", type=int, default=1, help="synthetic generator seed of the target set")
    p.add_argument("--metric", default="AP50", help="metric compared (AP50 or AP)")
    p.add_argument("--workers", type=int, default=2, help="data-loader workers (as the demo)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = lrnet's thread policy)")
    p.add_argument("--out", default="runs/bench_finetune")
    args = p.parse_args()
    from lrnet.engine.training.trainer import train

    out = Path(args.out)
    common = dict(
        model=args.model,
        data="synthetic",
        imgsz=args.imgsz,
        batch=args.batch,
        workers=args.workers,
        device="cpu",
        synthetic_train=args.train,
        synthetic_val=args.val,
        synthetic_size=args.imgsz,
        project=str(out),
        exist_ok=True,
        nbs=args.batch,  # a short CPU run: one optimizer step per batch, no accumulation
        plots=False,
        tensorboard=False,
        seed=0,
        threads=args.threads,
    )
    results: dict = {"args": vars(args)}
    t0 = time.time()
    # Plain (non-mosaic) images for the second half of each run, as the demo does at this budget.
    pre = train(
        name="pretrain",
        epochs=args.pre_epochs,
        synthetic_seed=args.seed_a,
        close_mosaic=max(1, args.pre_epochs // 2),
        **common,
    )
    results["pretrain"] = {args.metric: ap_per_epoch(pre.save_dir, args.metric), "seconds": time.time() - t0}
    t1 = time.time()
    ft = train(
        name="finetune",
        epochs=args.ft_epochs,
        synthetic_seed=args.seed_b,
        weights=str(pre.last),
        close_mosaic=max(1, args.ft_epochs // 2),
        **common,
    )
    ft_curve = [ft.initial_metrics.get(args.metric, 0.0), *ap_per_epoch(ft.save_dir, args.metric)]
    results["finetune"] = {args.metric: ft_curve, "seconds": time.time() - t1}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    t2 = time.time()
    scratch = train(
        name="scratch",
        epochs=args.scratch_epochs,
        synthetic_seed=args.seed_b,
        close_mosaic=max(1, args.scratch_epochs // 2),
        **common,
    )
    sc_curve = [0.0, *ap_per_epoch(scratch.save_dir, args.metric)]
    results["scratch"] = {args.metric: sc_curve, "seconds": time.time() - t2}

    target = ft_curve[args.ft_epochs]
    # No signal when the fine-tuned model has no AP: a tie at 0 says nothing about the ratio.
    reached = next((e for e, v in enumerate(sc_curve) if e > 0 and v >= target), None) if target > 0 else None
    results["target"] = target
    results["scratch_epochs_to_target"] = reached
    results["ratio"] = (reached / args.ft_epochs) if reached else None
    (out / "results.json").write_text(json.dumps(results, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(len(ft_curve)), ft_curve, "o-", label=f"fine-tune from seed-{args.seed_a} checkpoint")
    ax.plot(range(len(sc_curve)), sc_curve, "s-", label="from scratch")
    ax.axhline(target, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"epoch on the seed-{args.seed_b} set")
    ax.set_ylabel(f"val {args.metric}")
    ax.set_title(f"{args.model}, imgsz {args.imgsz}, {args.train} train images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "finetune_curves.png", dpi=100)
    plt.close(fig)

    print(f"fine-tune {args.metric} per epoch (0 = checkpoint): {[round(v, 4) for v in ft_curve]}")
    print(f"scratch   {args.metric} per epoch:                  {[round(v, 4) for v in sc_curve]}")
    if target <= 0:
        print(
            f"no signal: the fine-tuned model has {args.metric} 0 after {args.ft_epochs} epochs; train "
            "longer (--pre-epochs, --train, --imgsz) for a comparison"
        )
    elif reached:
        print(
            f"scratch needs {reached} epochs to reach the fine-tune's {target:.4f} after {args.ft_epochs}: "
            f"ratio {reached / args.ft_epochs:.2f}x"
        )
    else:
        print(
            f"scratch did not reach {target:.4f} within {args.scratch_epochs} epochs: "
            f"ratio > {args.scratch_epochs / args.ft_epochs:.2f}x"
        )
    print(f"wrote {out / 'results.json'} and {out / 'finetune_curves.png'}")


if __name__ == "__main__":
    main()
