"""Inference: running trained weights, from a checkpoint or an exported ONNX file.

Modules: `predictor` (letterbox, model, post-processing; model loading), `sources` (image, folder, glob
and video inputs), `slicing` (tiled inference of large images), `drawing` (annotated images),
`predict_run` (the `lrnet predict` job), `validator` (scores a model on a loader), `validate_run` (the
`lrnet val` job), `exporter` (ONNX export and check) and `onnx_backend` (onnxruntime behind the model
interface). Nothing is imported here, so that `lrnet --help` does not load torch.
"""
