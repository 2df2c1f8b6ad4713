"""Jobs (layer 6) other than training and the experiments: one module per `lrnet` command's work.

Modules: `val` (`lrnet val`), `predict` (`lrnet predict`), `export` (`lrnet export`: every format and
its checks) with `onnx_export` (the one ONNX trace every format starts from), `benchmark` (`lrnet
benchmark`) and `info` (`lrnet info`). Each takes one options dataclass. Import names from their
modules.
"""
