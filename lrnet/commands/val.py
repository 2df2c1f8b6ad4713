"""`lrnet val`: evaluate a checkpoint (or exported .onnx) on a data split under the AI-TOD or COCO protocol.

Prints AP, AP50, AP75 and the per-size APs, parameters and GFLOPs, and ms per image (pre-process,
inference, NMS); writes `pr_curve.png`, `predictions.json` (COCO results) and `metrics.json`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("val", help="evaluate weights on a data split", description=__doc__)
    parser.add_argument("--weights", required=True, help="lrnet checkpoint (.pt) or exported .onnx")
    parser.add_argument("--data", required=True, help="data YAML / COCO JSON / dataset folder")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--protocol", choices=["aitod", "coco"], default="aitod")
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input size (default: the training size, else 640)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--conf", type=float, default=0.001)
    parser.add_argument("--iou", type=float, default=0.7)
    parser.add_argument("--max-det", type=int, default=None, help="default: 1500 (aitod), 300 (coco)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--per-class", action="store_true", help="print the AP of every class")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--project", default="runs/val")
    parser.add_argument("--name", default="exp")
    parser.add_argument("--exist-ok", action="store_true")
    parser.set_defaults(func=run)


def check_class_count(
    weights: str, model_names: list[str] | None, model_nc: int, data: str, data_names: list[str]
) -> None:
    """Raise ValueError when the weights' class count differs from the data's."""
    if model_nc != len(data_names):
        raise ValueError(
            f"{weights}: the model has {model_nc} classes ({(model_names or [])[:5]}...) but {data} has "
            f"{len(data_names)} ({data_names[:5]}...): validate on the data the model was trained for"
        )


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from lrnet.data import build_dataloader
    from lrnet.data.dataset import DetectionDataset
    from lrnet.engine.checkpoint import CheckpointError
    from lrnet.engine.onnx_backend import OnnxModelError
    from lrnet.engine.pr_curve import plot_pr_curve, pr_curves
    from lrnet.engine.predictor import load_inference_model, next_run_dir
    from lrnet.engine.validator import evaluate

    try:
        model, names, default_imgsz = load_inference_model(args.weights, device=args.device)
        imgsz = args.imgsz or default_imgsz
        if getattr(model, "dynamic", True) is False and imgsz != model.imgsz:
            raise ValueError(f"{args.weights}: exported for --imgsz {model.imgsz}, got {imgsz}")
        dataset = DetectionDataset(
            args.data, split=args.split, imgsz=imgsz, augment=False, verbose=not args.json
        )
        check_class_count(args.weights, names, int(model.nc), args.data, list(dataset.names))
    except (CheckpointError, OnnxModelError, ValueError, FileNotFoundError) as e:
        print(f"lrnet val: error: {e}", file=sys.stderr)
        return 2
    loader = build_dataloader(dataset, batch_size=args.batch, shuffle=False, workers=args.workers)
    max_det = args.max_det or (1500 if args.protocol == "aitod" else 300)
    result = evaluate(
        model, loader, protocol=args.protocol, conf=args.conf, iou=args.iou, max_det=max_det,
        device=args.device, half=args.half, progress=not args.json,
    )  # fmt: skip
    info = {}
    if hasattr(model, "cfg"):
        from lrnet.nn import build_model
        from lrnet.nn.summary import model_info

        unfused = build_model(model.cfg)  # model_info wants an unfused model for both totals
        info = model_info(unfused, imgsz)

    out_dir = next_run_dir(args.project, args.name, args.exist_ok)
    (out_dir / "predictions.json").write_text(json.dumps(result["predictions"]))
    curves = pr_curves(dataset.coco_gt(), result["predictions"], protocol=args.protocol)
    plot_pr_curve(curves, out_dir / "pr_curve.png", title=f"{Path(args.weights).name} on {args.data}")
    summary = {
        "weights": str(args.weights),
        "data": str(args.data),
        "protocol": args.protocol,
        "imgsz": imgsz,
        "images": len(dataset),
        "metrics": result["metrics"],
        "per_class": result["per_class"],
        "speed_ms": result["speed"],
        "params": info.get("params"),
        "params_fused": info.get("params_fused"),
        "gflops": info.get("gflops"),
        "gflops_fused": info.get("gflops_fused"),
        "save_dir": str(out_dir),
    }
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(format_report(summary, per_class=args.per_class))
    return 0


def format_report(summary: dict, per_class: bool = False) -> str:
    """Metric table (in %), model size and speed lines."""
    m = summary["metrics"]
    keys = [k for k in m if k.startswith("AP")]

    def pct(v: float) -> str:
        return f"{100 * v:.1f}" if v >= 0 else "-"

    lines = [
        f"{summary['weights']} on {summary['data']} ({summary['images']} images, "
        f"{summary['protocol']} protocol, imgsz {summary['imgsz']})",
        "  ".join(f"{k:>6}" for k in keys),
        "  ".join(f"{pct(m[k]):>6}" for k in keys),
    ]
    if per_class:
        width = max([len(n) for n in summary["per_class"]] + [5])
        lines.append(f"{'class':<{width}}  AP")
        lines += [f"{n:<{width}}  {pct(v)}" for n, v in summary["per_class"].items()]
    if summary.get("params") is not None:
        lines.append(
            f"parameters {summary['params']:,} (fused {summary['params_fused']:,}), "
            f"GFLOPs {summary['gflops']:.2f} (fused {summary['gflops_fused']:.2f}) at {summary['imgsz']}"
        )
    s = summary["speed_ms"]
    lines.append(
        f"speed per image: {s['preprocess']:.1f} ms pre-process, {s['inference']:.1f} ms inference, "
        f"{s['postprocess']:.1f} ms NMS"
    )
    lines.append(f"results saved to {summary['save_dir']} (pr_curve.png, predictions.json, metrics.json)")
    return "\n".join(lines)
