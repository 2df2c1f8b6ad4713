"""Fine-tuning from a checkpoint vs training from scratch, on the built-in synthetic set.

1. Pre-train on the synthetic set of generator seed A (`--pre-epochs`).
2. Fine-tune from that checkpoint on the set of seed B (other images, same classes) for `--ft-epochs`.
3. Train from scratch on seed B for `--scratch-epochs`.
Prints the AP per epoch of both runs on seed B's val split (epoch 0 of the fine-tune = the
checkpoint before any step), the scratch epochs needed to reach the fine-tune's AP after
`--ft-epochs`, and their ratio; writes results_<ft-name>.json and <ft-name>_curves.png to `--out`.

The fine-tune's recipe is `--ft-optimizer` (default `auto`: YOLOv8's rule, AdamW with lr 0.002 * 5 /
(4 + nc) for a short run) and `--ft-warmup` epochs (default 0: a warm-up starts the biases at lr 0.1,
which throws away what the checkpoint learned); the pre-training and the scratch run use the paper's
recipe (SGD lr0 0.01, 3 warm-up epochs). `--reuse` takes a phase whose run already finished in
`--out` instead of training it again (e.g. to compare fine-tune recipes on one checkpoint).

Usage: .venv/bin/python benchmarks/bench_finetune.py [--model yolov8n --imgsz 160 --pre-epochs 12]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def ap_per_epoch(save_dir: Path, metric: str) -> list[float]:
    """The validation `metric` of every epoch from a run's results.csv."""
    from lrnet.training.plots import read_results_csv

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
    p.add_argument("--ft-optimizer", default="auto", help="optimizer of the fine-tune (sgd, adamw, auto)")
    p.add_argument("--ft-warmup", type=float, default=0.0, help="warm-up epochs of the fine-tune")
    p.add_argument("--ft-name", default="finetune", help="run folder of the fine-tune inside --out")
    p.add_argument("--reuse", action="store_true", help="reuse finished pretrain/scratch runs in --out")
    p.add_argument("--seed-a", type=int, default=0, help="synthetic generator seed of the pre-training set")
    p.add_argument("--seed-b", type=int, default=1, help="synthetic generator seed of the target set")
    p.add_argument("--metric", default="AP50", help="metric compared (AP50 or AP)")
    p.add_argument("--workers", type=int, default=2, help="data-loader workers (as the demo)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = lrnet's thread policy)")
    p.add_argument("--out", default="runs/bench_finetune")
    args = p.parse_args()
    from lrnet.training.trainer import train

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

    def run(name: str, epochs: int, reusable: bool = True, **kw):
        """Train phase `name`, or reuse its finished run (results.csv with every epoch) with --reuse."""
        done = (out / name / "results.csv").is_file()
        if reusable and args.reuse and done and len(ap_per_epoch(out / name, args.metric)) == epochs:
            print(f"reusing the finished run {out / name}")
            return None, ap_per_epoch(out / name, args.metric), out / name
        t = time.time()
        # plain (non-mosaic) images for the second half of each run, as the demo does at this budget
        res = train(name=name, epochs=epochs, close_mosaic=max(1, epochs // 2), **kw, **common)
        results.setdefault("seconds", {})[name] = time.time() - t
        return res, ap_per_epoch(res.save_dir, args.metric), res.save_dir

    _, pre_curve, pre_dir = run("pretrain", args.pre_epochs, synthetic_seed=args.seed_a)
    results["pretrain"] = {args.metric: pre_curve}
    ft, ft_epochs_curve, _ = run(
        args.ft_name,
        args.ft_epochs,
        reusable=False,  # its epoch-0 metrics come from the run itself
        synthetic_seed=args.seed_b,
        weights=str(pre_dir / "weights" / "last.pt"),
        optimizer=args.ft_optimizer,
        warmup_epochs=args.ft_warmup,
    )
    ft_curve = [ft.initial_metrics.get(args.metric, 0.0), *ft_epochs_curve]
    results["finetune"] = {args.metric: ft_curve}
    (out / f"results_{args.ft_name}.json").write_text(json.dumps(results, indent=1))
    _, sc_epochs_curve, _ = run("scratch", args.scratch_epochs, synthetic_seed=args.seed_b)
    sc_curve = [0.0, *sc_epochs_curve]
    results["scratch"] = {args.metric: sc_curve}

    target = ft_curve[args.ft_epochs]
    # No signal when the fine-tuned model has no AP: a tie at 0 says nothing about the ratio.
    reached = next((e for e, v in enumerate(sc_curve) if e > 0 and v >= target), None) if target > 0 else None
    results["target"] = target
    results["scratch_epochs_to_target"] = reached
    results["ratio"] = (reached / args.ft_epochs) if reached else None
    (out / f"results_{args.ft_name}.json").write_text(json.dumps(results, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        range(len(ft_curve)),
        ft_curve,
        "o-",
        label=f"fine-tune ({args.ft_optimizer}, warm-up {args.ft_warmup:g} epochs)",
    )
    ax.plot(range(len(sc_curve)), sc_curve, "s-", label="from scratch")
    ax.axhline(target, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"epoch on the seed-{args.seed_b} set")
    ax.set_ylabel(f"val {args.metric}")
    ax.set_title(f"{args.model}, imgsz {args.imgsz}, {args.train} train images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"{args.ft_name}_curves.png", dpi=100)
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
    print(f"wrote {out / f'results_{args.ft_name}.json'} and {out / f'{args.ft_name}_curves.png'}")


if __name__ == "__main__":
    main()
