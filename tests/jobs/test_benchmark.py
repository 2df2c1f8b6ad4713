"""`lrnet benchmark`: one table over formats (metrics equal to `lrnet val`'s, timings, files), bad specs."""

import argparse
import json

import pytest

from lrnet.cli import main
from lrnet.errors import ConfigError
from lrnet.jobs.benchmark import DEFAULT_FORMATS, BenchmarkJob, parse_format, run_benchmark
from lrnet.jobs.val import ValJob, run_validation
from lrnet.schema import add_option_flags, options_from_args
from tests.fixtures.predict_fixtures import make_checkpoint, make_yolo_dataset


def test_parse_format_and_bad_specs():
    assert parse_format("pytorch") == ("pytorch", "fp32")
    assert parse_format("openvino-int8") == ("openvino", "int8")
    for bad, match in [
        ("tflite", "unknown"),
        ("onnx-int4", "unknown"),
        ("pytorch-fp16", "PyTorch runs fp32"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_format(bad)
    with pytest.raises(ConfigError, match="runs=0"):
        BenchmarkJob("w.pt", "d", runs=0)
    with pytest.raises(ConfigError, match="formats is empty"):
        BenchmarkJob("w.pt", "d", formats=())


def test_benchmark_flags_are_the_job_fields():
    parser = argparse.ArgumentParser()
    add_option_flags(parser, BenchmarkJob)
    argv = ["--weights", "w.pt", "--data", "d", "--formats", "pytorch", "onnx-int8"]
    job = options_from_args(BenchmarkJob, parser.parse_args(argv))
    assert job == BenchmarkJob("w.pt", "d", formats=["pytorch", "onnx-int8"])
    default = options_from_args(BenchmarkJob, parser.parse_args(argv[:4]))
    assert default.formats == list(DEFAULT_FORMATS) and default.exist_ok is False
    assert BenchmarkJob("w.pt", "d", formats="onnx").formats == ["onnx"]  # one spec, not its letters
    with pytest.raises(ConfigError, match="format 'onnx-int4' is unknown; use pytorch, onnx"):
        options_from_args(BenchmarkJob, parser.parse_args([*argv[:4], "--formats", "onnx-int4"]))


class StepClock:
    """A `time` stand-in whose perf_counter advances by `step` seconds per call: each timed stage of a
    prediction then lasts exactly `step`, whatever the machine's speed or load."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now


def test_benchmark_table_matches_val(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lrnet.runtime.predictor.time", StepClock(0.004))  # 4 ms per stage
    ckpt = make_checkpoint(tmp_path / "m.pt", nc=3, imgsz=64)
    data = make_yolo_dataset(tmp_path / "data", nc=3, n=2, size=64)
    argv = ["benchmark", "--weights", str(ckpt), "--data", str(data), "--formats", "pytorch", "onnx"]
    argv += ["--runs", "3", "--warmup", "1", "--project", str(tmp_path / "b"), "--name", "x"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| pytorch |" in out and "| onnx |" in out
    summary = json.loads((tmp_path / "b" / "x" / "benchmark.json").read_text())
    assert (tmp_path / "b" / "x" / "benchmark.md").read_text().count("\n| ") == 3  # header + 2 rows
    rows = {r["format"]: r for r in summary["rows"]}
    assert set(rows) == {"pytorch", "onnx"} and summary["imgsz"] == 64
    val = run_validation(ValJob(str(ckpt), str(data), project=str(tmp_path / "v"), json=True))
    for k in ("AP", "AP50", "APt"):  # the same validator as `lrnet val`, in %
        assert rows["pytorch"]["metrics"][k] == pytest.approx(100 * val["metrics"][k], abs=1e-6)
        assert rows["onnx"]["metrics"][k] == pytest.approx(rows["pytorch"]["metrics"][k], abs=0.5)
    for r in rows.values():
        t = r["latency_ms"]
        for stage in ("preprocess", "inference", "postprocess"):
            assert t[f"{stage}_median"] == pytest.approx(4.0)
        assert t["total_median"] == pytest.approx(12.0) and t["total_p90"] == pytest.approx(12.0)
        assert r["size_mib"] > 1
    assert rows["onnx"]["export_check"].startswith("max diff")


def test_benchmark_refuses_bad_format_before_work(tmp_path):
    with pytest.raises(ConfigError, match="format 'onnx-int4'"):
        run_benchmark(BenchmarkJob(str(tmp_path / "w.pt"), str(tmp_path), formats=("onnx-int4",)))
