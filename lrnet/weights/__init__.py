"""Weights (layer 4): checkpoints and the weights that come from elsewhere.

Modules: `checkpoint` (atomic save, safe load with `weights_only=True`), `safe_pickle` (linear,
size-bounded unpickling, checked before every `torch.load`), `ultralytics_import` (reads an
ultralytics `.pt` with a restricted unpickler), `transfer` (copies matching tensors into a model) and
`convert` (`lrnet convert-weights`). Import names from their modules.
"""
