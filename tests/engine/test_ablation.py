import csv
import math
from pathlib import Path

import pytest

from lrnet.engine.experiments.ablation import ABLATIONS, format_table, run_ablation, slug, summarize_run
from lrnet.losses import parse_box_loss_spec


def _fake_train(calls: list[dict]):
    """A stand-in for `trainer.train` that writes a results.csv whose AP depends on model and seed."""

    def train(**kw):
        calls.append(kw)
        if "resume" in kw:
            run_dir = Path(kw["resume"]).parent.parent
            model, seed = "yolov8n", 0
        else:
            run_dir = Path(kw["project"]) / kw["name"]
            model, seed = kw["model"], kw["seed"]
        run_dir.mkdir(parents=True, exist_ok=True)
        base = 0.2 if model.startswith("lrnet") else 0.1
        with open(run_dir / "results.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "metrics/AP", "metrics/AP50", "metrics/APvt", "fitness"])
            for epoch in (1, 2):
                ap = base * epoch / 2 + 0.01 * seed
                w.writerow([epoch, ap, 2 * ap, -1.0, 0.9 * ap + 0.1 * 2 * ap])

    return train


def test_every_table_uses_valid_box_loss_specs_and_models():
    from lrnet.nn import build_model

    models = set()
    for table in ABLATIONS.values():
        assert len(table.variants) >= 2
        for v in table.variants:
            kind, _ = parse_box_loss_spec(v.box_loss)
            assert kind in ("ciou", "rsiou", "siou", "eiou", "nwd")
            models.add(v.model)
    for name in sorted(models):
        assert build_model(name, nc=3).nc == 3


def test_runner_skips_finished_runs_and_reports_mean_and_spread(tmp_path):
    calls: list[dict] = []
    results, report = run_ablation(
        "components", seeds=(0, 1), project=tmp_path, train_fn=_fake_train(calls), nc=3, imgsz=64, epochs=2
    )
    assert len(calls) == 8  # 4 variants x 2 seeds
    assert all(c["epochs"] == 2 and c["imgsz"] == 64 for c in calls)
    first = results[0]
    mean, std = first.mean_std("AP")
    # yolov8n: best epoch 2, AP = 0.1 + 0.01 * seed for seeds 0 and 1
    assert math.isclose(mean, 0.105) and math.isclose(std, math.sqrt(2 * 0.005**2))
    text = report.read_text()
    assert "10.50 ± 0.71" in text and "(+10.00)" in text and "n/a" in text
    assert (tmp_path / "components" / "ap50_curves.png").stat().st_size > 0
    # second invocation: everything is done, nothing is trained again
    run_ablation("components", seeds=(0, 1), project=tmp_path, train_fn=_fake_train(calls), nc=3, imgsz=64)
    assert len(calls) == 8


def test_runner_resumes_a_killed_variant(tmp_path):
    run_dir = tmp_path / "direction" / slug("SIoU") / "seed0"
    (run_dir / "weights").mkdir(parents=True)
    (run_dir / "weights" / "last.pt").write_bytes(b"x")
    calls: list[dict] = []
    run_ablation(
        "direction", seeds=(0,), project=tmp_path, train_fn=_fake_train(calls), nc=3, imgsz=64, workers=1
    )
    assert calls[0] == {"resume": str(run_dir / "weights" / "last.pt"), "workers": 1}
    assert "resume" not in calls[1]


def test_summarize_run_takes_best_fitness_epoch(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("epoch,metrics/AP,metrics/AP50,fitness\n1,0.3,0.5,0.9\n2,0.2,0.4,0.1\n")
    summary = summarize_run(path)
    assert summary.metrics == {"AP": 0.3, "AP50": 0.5} and summary.ap50_curve == [0.5, 0.4]
    with pytest.raises(ValueError, match="no epochs"):
        (tmp_path / "empty.csv").write_text("epoch,fitness\n")
        summarize_run(tmp_path / "empty.csv")


def test_format_table_has_a_row_per_variant():
    from lrnet.engine.experiments.ablation import RunSummary, VariantResult

    rows = [
        VariantResult(v, 1_000_000, 1.0, [RunSummary({"AP": 0.1}, [0.1], 1)])
        for v in ABLATIONS["focal"].variants
    ]
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1
