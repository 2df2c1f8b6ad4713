"""`lrnet export`: write a checkpoint as ONNX, OpenVINO IR or TorchScript (fp32, fp16 or int8) and check
it against PyTorch: fp32 by the largest relative difference of the raw outputs (tolerance 1e-3), fp16
and int8 by their detections (95% of PyTorch's detections above conf 0.25 matched at IoU >= 0.9).
int8 is onnxruntime's static quantization calibrated on images of --data. Exit code 1 when the check
fails.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` sub-command."""
    parser = subparsers.add_parser(
        "export", help="export weights to ONNX, OpenVINO or TorchScript", description=__doc__
    )
    parser.add_argument("--weights", required=True, help="lrnet checkpoint (.pt)")
    parser.add_argument("--format", default="onnx", help="onnx, openvino or torchscript")
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input size (default: the training size, else 640)"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    parser.add_argument("--half", action="store_true", help="float16 weights and activations (GPU runtimes)")
    parser.add_argument("--int8", action="store_true", help="int8 post-training quantization (needs --data)")
    parser.add_argument("--data", default=None, help="data to calibrate int8 on and to check fp16/int8 with")
    parser.add_argument("--split", default="train", help="split of --data to take images from")
    parser.add_argument("--calib-images", type=int, default=64, help="images to calibrate int8 on")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument(
        "--out", default=None, help="output path (default: the weights path with the format's suffix)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify and print the check."""
    from lrnet.engine.inference.export_formats import ExportJob, describe_export, run_export

    job = ExportJob(
        weights=args.weights,
        format=args.format,
        out=args.out,
        imgsz=args.imgsz,
        dynamic=args.dynamic,
        half=args.half,
        int8=args.int8,
        data=args.data,
        split=args.split,
        calib_images=args.calib_images,
        opset=args.opset,
        batch=args.batch,
    )
    result = run_export(job)
    print(f"exported {args.weights} -> {result.path}\n{describe_export(result)}")
    return 0 if result.ok else 1
