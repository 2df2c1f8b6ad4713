"""`lrnet info MODEL`: layers, parameters and GFLOPs (unfused and BN-folded), output strides."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="describe a model: layers, parameters, GFLOPs, strides",
        description=__doc__,
    )
    parser.add_argument("model", nargs="?", help="shipped model name (see --list) or a model YAML path")
    parser.add_argument("--nc", type=int, default=None, help="number of classes (default: the config's, 80)")
    parser.add_argument("--imgsz", type=int, default=640, help="square input size for the GFLOPs count")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the totals only")
    parser.add_argument("--list", action="store_true", help="list the shipped model names and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lrnet.nn import build_model, shipped_model_names
    from lrnet.nn.summary import format_layer_table, layer_table, model_info

    if args.list:
        print("\n".join(shipped_model_names()))
        return 0
    if not args.model:
        print("lrnet info: error: MODEL is required (or --list)")
        return 2
    if args.nc is not None and args.nc < 1:
        print(f"lrnet info: error: --nc must be >= 1, got {args.nc}")
        return 2
    try:
        model = build_model(args.model, nc=args.nc)
    except ValueError as e:
        print(f"lrnet info: error: {e}")
        return 2
    stride_max = int(model.stride.max())
    if args.imgsz < stride_max or args.imgsz % stride_max:
        print(f"lrnet info: error: --imgsz {args.imgsz} must be a positive multiple of {stride_max}")
        return 2
    info = model_info(model, args.imgsz)
    if args.json:
        print(json.dumps({"model": model.cfg["name"], "nc": model.nc, **info}))
        return 0
    print(f"{model.cfg['name']} (nc={model.nc}, scale={model.cfg.get('scale')})")
    print(format_layer_table(layer_table(model)))
    print(
        f"parameters: {info['params']:,} (BN folded: {info['params_fused']:,})\n"
        f"GFLOPs at {args.imgsz}x{args.imgsz}: {info['gflops']:.2f} (BN folded: {info['gflops_fused']:.2f}); "
        "2 x multiply-adds of convolutions/linear layers, torch.utils.flop_counter\n"
        f"strides: {info['strides']}"
    )
    return 0
