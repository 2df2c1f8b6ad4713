"""Runtime (layer 5): running a model, trained or exported, on images.

Modules: `predictor` (letterbox, model, post-processing, sliced inference; model loading), `validator`
(scores a model on a loader), `sliced_eval` (scores a model on whole large images, tile by tile),
`sources` (image, folder, glob and video inputs), `drawing` (annotated images), `result_ids` (data-set
image ids for COCO results), `backends` and `onnx_backend` (exported models behind the model
interface), and the run-wide rules: `device`, `threads`, `thread_tuner`, `imgsz`, `run_dir`,
`run_lock`. Import names from their modules.
"""
