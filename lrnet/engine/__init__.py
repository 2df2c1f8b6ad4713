"""Jobs built on the model, data and metrics packages, one subpackage per job.

- `lrnet.engine.training`: the training loop and everything it owns (config, optimiser, EMA, RNG,
  DDP, data set-up, checkpoints, results plots).
- `lrnet.engine.inference`: running trained weights (predictor, sliced inference, drawing, ONNX export
  and runtime, validation).
- `lrnet.engine.experiments`: multi-run studies (the paper's ablation tables, the end-to-end demo).

Shared by all three: `run_dir.next_run_dir` (the run-folder rule), `device.select_device` (the device
rule) and `imgsz.check_imgsz` (the input-size rule). The subpackages' `__init__` files import nothing
heavy, so that `lrnet --help` stays fast; import names from their modules.
"""
