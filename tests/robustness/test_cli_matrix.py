"""Hostile and careless flags and files against every sub-command: one line on stderr and exit 2.

Run in-process through `lrnet.cli.main` (no interpreter start per case) so the matrix stays fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lrnet.cli import main
from tests.robustness import hostile

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def files(tmp_path, tiny_data, tiny_weights) -> dict[str, str]:
    """Named hostile files; "{name}" in a case's arguments is replaced by the path."""
    d = tmp_path
    (d / "empty.yaml").write_text("")
    (d / "syntax.yaml").write_text("names: [a, b\ntrain: : :\n")
    (d / "bomb.yaml").write_text(hostile.alias_bomb())
    (d / "tag.yaml").write_text("names: !!python/object/apply:os.system ['touch " + str(d / "pwned") + "']\n")
    (d / "scalar.yaml").write_text("just a string\n")
    (d / "binary.yaml").write_bytes(b"\x80\x81\xfe\xff" * 10)
    (d / "nan.json").write_text('{"images": [{"id": 1, "file_name": "x.jpg", "width": NaN, "height": 5}], '
                                '"annotations": [], "categories": [{"id": 1, "name": "a"}]}')  # fmt: skip
    (d / "proj").write_text("a file, not a folder")
    return {
        "data": str(tiny_data),
        "images": str(tiny_data.parent / "images" / "val"),
        "w": str(tiny_weights),
        **{p.stem: str(p) for p in d.iterdir() if p.is_file()},
        "tmp": str(d),
    }


PREDICT = ["predict", "--weights", "{w}", "--source", "{images}", "--project", "{tmp}/p"]
VAL = ["val", "--weights", "{w}", "--data", "{data}", "--project", "{tmp}/v"]
TRAIN = [
    "train",
    "--data",
    "{data}",
    "--model",
    "yolov8n",
    "--imgsz",
    "64",
    "--epochs",
    "1",
    "--device",
    "cpu",
]
EXPORT = ["export", "--weights", "{w}", "--out", "{tmp}/x.onnx"]

CASES: dict[str, tuple[list[str], str]] = {
    # predict: every numeric option validated by PredictJob's rules
    "predict-conf": ([*PREDICT, "--conf", "2"], "conf=2.0 is out of range"),
    "predict-iou": ([*PREDICT, "--iou", "-0.5"], "iou=-0.5 is out of range"),
    "predict-max-det": ([*PREDICT, "--max-det", "-1"], "max_det=-1 is out of range"),
    "predict-imgsz": ([*PREDICT, "--imgsz", "0"], "imgsz=0 is out of range"),
    "predict-merge-threshold": (
        [*PREDICT, "--merge-threshold", "-1"],
        "merge_threshold=-1.0 is out of range",
    ),
    "predict-overlap": ([*PREDICT, "--slice", "64", "--overlap", "1"], "overlap=1.0 is out of range"),
    "predict-batch": ([*PREDICT, "--batch", "0"], "batch=0 is out of range"),
    "predict-device": ([*PREDICT, "--device", "cuda"], "CUDA is not available"),
    # val
    "val-split": ([*VAL, "--split", "bogus"], "no 'bogus' split"),
    "val-imgsz": ([*VAL, "--imgsz", "0"], "imgsz=0 is out of range"),
    "val-conf": ([*VAL, "--conf", "2"], "conf=2.0 is out of range"),
    "val-empty-yaml": (["val", "--weights", "{w}", "--data", "{empty}"], "empty"),
    "val-syntax-yaml": (["val", "--weights", "{w}", "--data", "{syntax}"], "not valid YAML"),
    "val-bomb-yaml": (["val", "--weights", "{w}", "--data", "{bomb}"], "alias bomb"),
    "val-tag-yaml": (["val", "--weights", "{w}", "--data", "{tag}"], "not valid YAML"),
    "val-binary-yaml": (["val", "--weights", "{w}", "--data", "{binary}"], "not a UTF-8 text file"),
    "val-weights-is-yaml": (
        ["val", "--weights", "{data}", "--data", "{data}"],
        "not a readable lrnet checkpoint",
    ),
    # train
    "train-cfg-empty": (["train", "--cfg", "{empty}"], "empty"),
    "train-cfg-syntax": (["train", "--cfg", "{syntax}"], "not valid YAML"),
    "train-cfg-bomb": (["train", "--cfg", "{bomb}"], "alias bomb"),
    "train-cfg-tag": (["train", "--cfg", "{tag}"], "not valid YAML"),
    "train-cfg-scalar": (["train", "--cfg", "{scalar}"], "expected a mapping"),
    "train-epochs": ([*TRAIN, "--epochs", "0"], "epochs=0 is out of range"),
    "train-imgsz": ([*TRAIN, "--imgsz", "100"], "imgsz=100 is not a multiple of 32"),
    "train-imgsz0": ([*TRAIN, "--imgsz", "0"], "imgsz=0 is out of range"),
    "train-nbs": ([*TRAIN, "--nbs", "0"], "nbs=0 is out of range"),
    "train-ema-tau": ([*TRAIN, "--ema-tau", "-1"], "ema_tau=-1.0 is out of range"),
    "train-mosaic": ([*TRAIN, "--mosaic", "5"], "mosaic=5.0 is out of range"),
    "train-device": ([*TRAIN, "--device", "cuda"], "CUDA is not available"),
    "train-model": ([*TRAIN, "--model", "nope"], "unknown model 'nope'"),
    "train-box-loss": ([*TRAIN, "--box-loss", "nope"], "unknown box loss kind 'nope'"),
    "train-model-is-pt": ([*TRAIN, "--model", "{w}"], "is a checkpoint, not a model config"),
    "train-model-binary": ([*TRAIN, "--model", "{binary}"], "not a UTF-8 text file"),
    "train-project-file": ([*TRAIN, "--project", "{proj}"], "{proj}"),
    "train-resume-missing": (["train", "--resume", "{tmp}/nope.pt"], "no checkpoint found"),
    "train-data-names": ([*TRAIN, "--data", "{scalar}"], "must be a mapping"),
    # export
    "export-batch": ([*EXPORT, "--batch", "0"], "batch=0 is out of range"),
    "export-opset": ([*EXPORT, "--opset", "5"], "opset=5 is out of range"),
    "export-imgsz": ([*EXPORT, "--imgsz", "0"], "imgsz=0 is out of range"),
    "export-onto-weights": (["export", "--weights", "{w}", "--out", "{w}"], "would destroy the input"),
    "export-check-images": ([*EXPORT, "--check-images", "0"], "check_images=0 is out of range"),
    "export-format": ([*EXPORT, "--format", "tflite"], "format='tflite' is not allowed"),
    # benchmark, demo, ablate: flags generated from their options dataclasses, checked before any work
    "benchmark-runs": (["benchmark", "--weights", "{w}", "--data", "{data}", "--runs", "0"], "runs=0 is out"),
    "benchmark-formats": (
        ["benchmark", "--weights", "{w}", "--data", "{data}", "--formats", "x"],
        "'x' is unknown",
    ),
    "demo-conf": (["demo", "--out", "{tmp}/demo", "--conf", "2"], "conf=2.0 is out of range"),
    "ablate-epochs": (
        ["ablate", "focal", "--project", "{tmp}/a", "--epochs", "0"],
        "epochs=0 is out of range",
    ),
    "ablate-seeds": (["ablate", "focal", "--project", "{tmp}/a", "--seeds", "x"], "seeds='x'"),
    # data: every action's flags generated from its options dataclass (SynthJob, ConvertJob, TileJob)
    "synth-train": (["data", "synth", "--out", "{tmp}/s", "--train", "-2"], "train=-2 is out of range"),
    "synth-imgsz": (["data", "synth", "--out", "{tmp}/s", "--imgsz", "0"], "imgsz=0 is out of range"),
    "synth-classes": (["data", "synth", "--out", "{tmp}/s", "--classes", "9"], "classes=9 is out of range"),
    "convert-to": (
        ["data", "convert", "--from", "coco", "--to", "visdrone", "{nan}", "{tmp}/c"],
        "fmt_out='visdrone' is not allowed",
    ),
    "tile-keep-empty": (["data", "tile", "{data}", "{tmp}/t", "--keep-empty", "2"], "keep_empty=2.0 is out"),
    "stats-split": (["data", "stats", "{data}", "--split", "bogus"], "no 'bogus' split"),
    "stats-bomb": (["data", "stats", "{bomb}"], "alias bomb"),
    "stats-nan-json": (["data", "stats", "{nan}"], "malformed COCO entry"),
    "convert-onto-input": (
        ["data", "convert", "--from", "coco", "--to", "coco", "{nan}", "{nan}"],
        "destroy",
    ),
    # simulate, eval-json, info: SimulateJob, EvalJsonJob, InfoOptions
    "simulate-iterations": (["simulate", "--out", "{tmp}/sim", "--iterations", "0"], "iterations=0 is out"),
    "simulate-iou-goals": (["simulate", "--out", "{tmp}/sim", "--iou-goals", "1.5"], "iou_goals=1.5 is out"),
    "eval-json-protocol": (["eval-json", "{nan}", "{nan}", "--protocol", "voc"], "protocol='voc' is not"),
    "info-nc": (["info", "yolov8n", "--nc", "0"], "nc=0 is out of range"),
    # info: a checkpoint is described (tests/nn/test_info_checkpoint.py); model options do not apply to it
    "info-pt-nc": (["info", "{w}", "--nc", "3"], "applies to a model config, not to the checkpoint"),
    "info-folder": (["info", "{tmp}"], "is a folder, not a checkpoint file"),
    "info-data-yaml": (["info", "{data}", "--json"], "model config has no 'nc' key"),  # YAML: a config
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_error_and_exit_2(case, files, capsys):
    args, needle = CASES[case]
    argv = [a.format(**files) for a in args]
    assert main(argv) == 2, f"{case}: {argv}"
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, f"{case}: {err}"
    assert needle.format(**files) in err[0], f"{case}: {err[0]}"
    assert len(err[0]) < 1000, "error messages are bounded in length"
    assert not Path(files["tmp"], "pwned").exists(), "a YAML tag ran code"


def test_export_onto_its_weights_keeps_them_loadable(files):
    from lrnet.weights.checkpoint import load_model

    before = Path(files["w"]).read_bytes()
    assert main(["export", "--weights", files["w"], "--out", files["w"]]) == 2
    assert Path(files["w"]).read_bytes() == before
    load_model(files["w"])
