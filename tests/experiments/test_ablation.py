import csv
import dataclasses
import math
from pathlib import Path

import pytest

from lrnet.errors import ConfigError, DataError
from lrnet.experiments.ablation import (
    ABLATIONS,
    PAPER_ASSIGNER,
    PAPER_EMA,
    AblateOptions,
    Variant,
    format_table,
    run_ablation,
    run_variant,
    slug,
    summarize_run,
)
from lrnet.losses import parse_box_loss_spec
from lrnet.training.train_config import TrainConfig


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
    from lrnet.experiments.ablation import RunSummary, VariantResult

    rows = [
        VariantResult(v, 1_000_000, 1.0, [RunSummary({"AP": 0.1}, [0.1], 1)])
        for v in ABLATIONS["focal"].variants
    ]
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1


def test_runs_go_seed_by_seed(tmp_path):
    calls: list[dict] = []
    run_ablation("direction", seeds=(0, 1), project=tmp_path, train_fn=_fake_train(calls), nc=3, imgsz=64)
    # every variant of seed 0, then seed 1: a stopped table has whole seeds
    assert [(c["seed"], c["name"]) for c in calls] == [(0, "seed0"), (0, "seed0"), (1, "seed1"), (1, "seed1")]
    assert [Path(c["project"]).name for c in calls] == ["SIoU", "SIoU-star"] * 2


def test_variants_subset_by_name_or_folder(tmp_path):
    calls: list[dict] = []
    results, _ = run_ablation(
        "components",
        seeds=(0,),
        project=tmp_path,
        train_fn=_fake_train(calls),
        variants=["plus-LFF", "LR-Net"],
        nc=3,
        imgsz=64,
    )
    assert [c["model"] for c in calls] == ["lrnet-n", "lrnet-n"]
    assert [r.variant.name for r in results] == ["+LFF", "LR-Net"]  # table order, not the order asked
    with pytest.raises(ConfigError, match=r"no variant named \['LR-Nett'\].*'LR-Net'"):
        run_ablation("components", project=tmp_path, train_fn=_fake_train(calls), variants=["LR-Nett"])
    assert len(calls) == 2


def test_unknown_shared_option_fails_before_any_training(tmp_path):
    calls: list[dict] = []
    with pytest.raises(ConfigError, match="epochz"):
        run_ablation("components", project=tmp_path, train_fn=_fake_train(calls), epochz=3)
    assert calls == []


def test_report_only_reports_finished_runs_and_lists_the_rest(tmp_path):
    calls: list[dict] = []
    run_ablation(
        "components", seeds=(0,), project=tmp_path, train_fn=_fake_train(calls), variants=["yolov8n"], nc=3
    )
    run_ablation(
        "components", seeds=(1,), project=tmp_path, train_fn=_fake_train(calls), variants=["LR-Net"], nc=3
    )
    # a started but unfinished run (no done.json) is not reported and not trained
    (tmp_path / "components" / "plus-LFF" / "seed0" / "weights").mkdir(parents=True)
    calls.clear()
    results, report = run_ablation(
        "components", seeds=(0, 1), project=tmp_path, train_fn=_fake_train(calls), report_only=True, nc=3
    )
    assert calls == []
    assert [(r.variant.name, len(r.runs)) for r in results] == [("yolov8n", 1), ("LR-Net", 1)]
    text = report.read_text()
    left_out = "+LFF seed 0, +RSIoU seed 0, LR-Net seed 0, yolov8n seed 1, +LFF seed 1, +RSIoU seed 1."
    assert f"Not finished, left out:** {left_out}" in text
    # one seed: the value alone, no "± 0.00" that would read as a measured spread
    assert "| 10.00 |" in text and "± 0.00" not in text
    with pytest.raises(DataError, match="no finished run"):
        run_ablation("direction", seeds=(0,), project=tmp_path, report_only=True)


def test_per_model_table_has_deltas_against_each_models_first_row(tmp_path):
    calls: list[dict] = []
    _, report = run_ablation(
        "similarity", seeds=(0,), project=tmp_path, train_fn=_fake_train(calls), nc=3, imgsz=64
    )
    text = report.read_text()
    assert "yolov8n:\n\n| Variant" in text and "lrnet-n:\n\n| Variant" in text
    lrnet_table = text.split("lrnet-n:\n\n")[1]
    # the fake gives every lrnet-n variant the same AP: deltas 0 against LR-Net, not +10 against yolov8n
    assert "(+0.00)" in lrnet_table and "(+10.00)" not in lrnet_table
    assert "delta against that model's first row" in text


def test_cli_refuses_unknown_variant_and_empty_report(tmp_path, capsys):
    from lrnet.cli import main

    argv = ["ablate", "direction", "--project", str(tmp_path), "--seeds", "0"]
    assert main([*argv, "--variants", "SIoU, SIoU**"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrnet ablate: error: ") and "'SIoU**'" in err and "'SIoU*'" in err
    assert main([*argv, "--report-only"]) == 2
    assert "no finished run" in capsys.readouterr().err
    assert not (tmp_path / "direction" / "SIoU").exists()  # nothing was trained


def test_ablate_options_share_the_training_options():
    opts = AblateOptions("components")
    shared = opts.train_overrides()
    assert shared == {
        "data": "synthetic",
        "epochs": 30,
        "imgsz": 640,
        "batch": 16,
        "device": "auto",
        "workers": 2,
    }
    train = {f.name: f for f in dataclasses.fields(TrainConfig)}
    ablate = {f.name: f for f in dataclasses.fields(AblateOptions)}
    for name in shared:  # TrainConfig's help text and rule, the ablation's default
        assert ablate[name].metadata == train[name].metadata
    assert "project" not in shared  # the table's folder, not a training option
    assert opts.seed_list == [0, 1, 2] and opts.variant_names == []
    assert AblateOptions("focal", variants="a, b,").variant_names == ["a", "b"]
    with pytest.raises(ConfigError, match="table='table9' is not allowed; use one of components"):
        AblateOptions("table9")
    with pytest.raises(ConfigError, match="seeds='0,x'"):
        AblateOptions("focal", seeds="0,x")
    with pytest.raises(ConfigError, match=r"epochs=0 is out of range; use \[1, 100000\]"):
        AblateOptions("focal", epochs=0)


def test_cli_flags_and_set_overrides_reach_the_runner(monkeypatch, tmp_path):
    from lrnet.cli import main

    seen = {}

    def fake_run(table, **kw):
        seen.update(kw, table=table)
        (tmp_path / "r.md").write_text("table")
        return [], tmp_path / "r.md"

    monkeypatch.setattr("lrnet.commands.ablate.run_ablation", fake_run)
    argv = ["ablate", "focal", "--seeds", "3,4", "--variants", "a,b", "--epochs", "5", "--report-only"]
    assert main([*argv, "--project", str(tmp_path), "--set", "epochs=7", "--set", "synthetic-train=9"]) == 0
    assert seen == {
        "table": "focal", "seeds": [3, 4], "project": str(tmp_path), "variants": ["a", "b"],
        "report_only": True, "data": "synthetic", "epochs": 7, "imgsz": 640, "batch": 16, "device": "auto",
        "workers": 2, "synthetic_train": 9,
    }  # fmt: skip


def test_cli_table_after_a_bare_boolean_flag(monkeypatch, tmp_path, capsys):
    """TABLE is a positional option (`AblateOptions.table`); a bare `--report-only` before it does not
    swallow it, and `--report-only false` still reads the boolean."""
    from lrnet.cli import main

    seen = {}

    def fake_run(table, **kw):
        seen.update(kw, table=table)
        (tmp_path / "r.md").write_text("table")
        return [], tmp_path / "r.md"

    monkeypatch.setattr("lrnet.commands.ablate.run_ablation", fake_run)
    assert main(["ablate", "--report-only", "components", "--project", str(tmp_path), "--epochs", "3"]) == 0
    assert seen["table"] == "components" and seen["report_only"] is True and seen["epochs"] == 3
    assert main(["ablate", "--report-only", "false", "focal", "--project", str(tmp_path)]) == 0
    assert seen["table"] == "focal" and seen["report_only"] is False
    assert main(["ablate", "focal", "--report-only", "--project", str(tmp_path)]) == 0
    assert seen["table"] == "focal" and seen["report_only"] is True
    capsys.readouterr()
    assert main(["ablate", "--report-only", "table9", "--project", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(
        "lrnet ablate: error: table='table9' is not allowed; use one of"
    )


def test_paired_deltas_by_hand():
    from lrnet.experiments.ablation import RunSummary, VariantResult, format_paired_deltas

    def res(name, aps, seeds):
        variant = ABLATIONS["focal"].variants[0]
        variant = type(variant)(name, variant.model, variant.box_loss)
        runs = [RunSummary({"AP": ap, "APm": -1.0}, [ap], 1, seed=s) for ap, s in zip(aps, seeds)]
        return VariantResult(variant, 1, 1.0, runs)

    ref = res("ref", [0.10, 0.20, 0.15], [0, 1, 2])
    # seed 5 has no reference run and is left out; diffs 2, 5, 0 points: mean 2.33, std sqrt(19/3) = 2.52
    var = res("var", [0.12, 0.25, 0.15, 0.9], [0, 1, 2, 5])
    one = res("one seed", [0.3], [0])
    table = format_paired_deltas([ref, var, one])
    assert "| var | 3 | +2.33 ± 2.52 |" in table and "| n/a |" in table
    assert "one seed" not in table  # a single pair has no spread
    assert format_paired_deltas([ref, one]) == ""
    # the main table compares a one-seed row with the reference's same seed (10), not its mean (15)
    assert "| 30.00 (+20.00) |" in format_table([ref, one])


def test_report_has_paired_table_that_removes_the_seed_shift(tmp_path):
    calls: list[dict] = []
    _, report = run_ablation(
        "direction", seeds=(0, 1, 2), project=tmp_path, train_fn=_fake_train(calls), nc=3, imgsz=64
    )
    text = report.read_text()
    # the fake shifts every variant by 1 point per seed: unpaired std 1.00, paired differences exact
    assert "| SIoU* | lrnet-n |" in text and "21.00 ± 1.00 (+0.00)" in text
    assert "Difference from SIoU, seed by seed (paired):" in text and "| SIoU* | 3 | +0.00 ± 0.00 |" in text


def test_ablation_rows_train_with_the_papers_assigner_unless_they_name_another(tmp_path):
    """The paper's tables must not change when a model's default assigner does."""
    calls: list[dict] = []
    fake_train = _fake_train(calls)
    paper = ABLATIONS["components"].variants[-1]
    run_variant(paper, 0, tmp_path / "a" / "seed0", {"epochs": 1}, train_fn=fake_train)
    nwd = Variant("nwd", "lrnet-n", "rsiou", (("assign_metric", "nwd"), ("assign_outside", True)))
    run_variant(nwd, 0, tmp_path / "b" / "seed0", {"epochs": 1}, train_fn=fake_train)
    run_variant(
        paper, 0, tmp_path / "c" / "seed0", {"epochs": 1, "assign_metric": "iou"}, train_fn=fake_train
    )
    baseline = ABLATIONS["components"].variants[0]  # yolov8n: its YAML names assign_min_side 16
    run_variant(baseline, 0, tmp_path / "d" / "seed0", {"epochs": 1}, train_fn=fake_train)
    assert dict(PAPER_ASSIGNER) == {"assign_metric": "ciou", "assign_outside": False, "assign_min_side": 0.0}
    got = [(c["assign_metric"], c["assign_outside"], c["assign_min_side"]) for c in calls]
    assert got == [("ciou", False, 0.0), ("nwd", True, 0.0), ("iou", False, 0.0), ("ciou", False, 0.0)]
    assert calls[3]["model"] == "yolov8n"
    assert dict(PAPER_EMA) == {"ema_tau": 2000.0} and all(c["ema_tau"] == 2000.0 for c in calls)
    assert calls[0]["model"] == "lrnet-n" and calls[0]["epochs"] == 1
