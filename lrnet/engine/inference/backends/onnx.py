"""`.onnx` files run with onnxruntime (`lrnet.engine.inference.onnx_backend.OnnxModel`)."""

from lrnet.engine.inference.backends.registry import register_backend
from lrnet.engine.inference.onnx_backend import OnnxModel

register_backend(".onnx")(OnnxModel)
