"""`.onnx` files run with onnxruntime (`lrnet.runtime.onnx_backend.OnnxModel`)."""

from lrnet.runtime.backends.registry import register_backend
from lrnet.runtime.onnx_backend import OnnxModel

register_backend(".onnx")(OnnxModel)
