"""experiments/hituav/report.py: the paired-delta rule against hand-worked numbers, and the report built
from fake run folders of both trainers (rows without runs listed as missing, the block rewritten in place)."""

import csv
import json
import math
from pathlib import Path

import pytest

from experiments.hituav import protocol as P
from experiments.hituav import report
from experiments.hituav.run_lrnet import ROWS, select_rows
from lrnet.errors import ConfigError, DataError
from lrnet.experiments.ablation import slug
from lrnet.nn import build_model


def test_paired_delta_hand_worked_counts():
    # AP per seed, fractions. Deltas in points: 3, 4, 3 -> mean 10/3, sample std sqrt(1/3).
    # Seed stds in points: row [13, 16, 17] -> sqrt(26/6) = 2.0817; reference [10, 12, 14] -> 2.
    d = report.paired_delta({0: 0.13, 1: 0.16, 2: 0.17}, {0: 0.10, 1: 0.12, 2: 0.14})
    assert d.seeds == (0, 1, 2)
    assert d.mean == pytest.approx(10 / 3)
    assert d.std == pytest.approx(math.sqrt(1 / 3))
    assert d.row_std == pytest.approx(math.sqrt(26 / 6))
    assert d.ref_std == pytest.approx(2.0)
    assert d.counts is True  # 3.33 > 0.58 and 3.33 > 2.08


def test_paired_delta_hand_worked_within_the_seed_spread():
    # Deltas 2, 1, 3 -> mean 2, std 1: beats its own std, but the row's seed std is sqrt(31) = 5.57.
    d = report.paired_delta({0: 0.22, 1: 0.26, 2: 0.33}, {0: 0.20, 1: 0.25, 2: 0.30})
    assert (d.mean, d.std) == (pytest.approx(2.0), pytest.approx(1.0))
    assert d.row_std == pytest.approx(math.sqrt(31)) and d.ref_std == pytest.approx(5.0)
    assert d.counts is False
    # Steady deltas that are small against their own spread do not count either: -1, +1, -3.
    noisy = report.paired_delta({0: 0.29, 1: 0.31, 2: 0.27}, {0: 0.30, 1: 0.30, 2: 0.30})
    assert noisy.mean == pytest.approx(-1.0) and noisy.std == pytest.approx(2.0) and noisy.counts is False


def test_paired_delta_uses_shared_seeds_only_and_refuses_empty_bins():
    d = report.paired_delta({0: 0.5, 1: 0.6, 2: 0.9}, {1: 0.5, 2: 0.7, 3: 0.1})
    assert d.seeds == (1, 2) and d.mean == pytest.approx(15.0) and d.std == pytest.approx(math.sqrt(50))
    assert report.paired_delta({0: 0.5}, {0: 0.4}).counts is None  # one seed: no spread to judge by
    assert report.paired_delta({0: 0.5}, {1: 0.4}) is None
    assert report.paired_delta({0: -1.0, 1: 0.2}, {0: 0.1, 1: 0.1}) is None  # no ground truth in the bin


def test_verdict_names_only_what_counts():
    ahead = report.paired_delta({0: 0.13, 1: 0.16, 2: 0.17}, {0: 0.10, 1: 0.12, 2: 0.14})
    behind = report.paired_delta({0: 0.10, 1: 0.12, 2: 0.14}, {0: 0.13, 1: 0.16, 2: 0.17})
    null = report.paired_delta({0: 0.22, 1: 0.26, 2: 0.33}, {0: 0.20, 1: 0.25, 2: 0.30})
    assert report.verdict({"AP": ahead, "APt": null}) == "AP: ahead (+3.33)"
    assert report.verdict({"AP": null, "APt": behind}) == "APt: behind (-3.33)"
    assert report.verdict({"AP": null, "APt": null}) == "not distinguishable at this budget"


def test_rows_are_data_with_unique_folders_and_known_references():
    specs = report.table_rows()
    names = [s.name for s in specs]
    assert names[:5] == [
        "ultralytics yolov8n", "ultralytics yolov8n-p2", "lrnet yolov8n", "lrnet yolov8n-p2", "lrnet-n"
    ]  # fmt: skip
    assert names[-2:] == ["ultralytics yolov8n-p2 scale 0.25", "ultralytics yolov8n-p2 EMA tau 100"]
    # the peer's experiments follow lrnet's rows
    assert all(a in names and b in names for a, b in report.EXTRA_PAIRS)
    assert specs[-2].setting == "CIoU (ultralytics), scale=0.25" and specs[-2].ref == "ultralytics yolov8n-p2"
    assert specs[-1].setting == "CIoU (ultralytics), ema_tau=100.0"
    assert len({s.folder for s in specs}) == len(specs)
    assert all(not s.ref or s.ref in names for s in specs)
    assert all(P.run_folder_name(n) == slug(n) for n in names)  # both trainers' folders, one rule
    assert [r.name for r in select_rows("lrnet-n_tiles,lrnet-n")] == ["lrnet-n", "lrnet-n tiles"]
    with pytest.raises(ConfigError, match="no lrnet row"):
        select_rows("nope")
    by_name = {r.name: r for r in ROWS}
    for row in ROWS[3:]:  # every experiment is paired with the protocol row of its own model
        assert row.ref in ("lrnet-n", "lrnet yolov8n-p2", "lrnet yolov8n")
        assert by_name[row.ref].variant.model == row.variant.model


def _fake_run(root: Path, spec: report.RowSpec, seed: int, ap: float, apt: float, curve: list[float]) -> None:
    run = P.run_dir(root, spec.folder, seed)
    run.mkdir(parents=True)
    metrics = dict.fromkeys(P.METRICS, 0.25) | {"AP": ap, "APt": apt, "APvt": -1.0}
    record = P.score_record(
        row=spec.name, trainer=spec.trainer, seed=seed, split="val", weights=run / "weights/last.pt",
        gt="data/hituav/gt_val.json", predictions=run / "scores/val/predictions.json", metrics=metrics,
        commands={"predict": f"predict {spec.folder} {seed}", "score": f"score {spec.folder} {seed}"},
        images=290, predict_seconds=29.0,
    )  # fmt: skip
    P.write_json_atomic(P.score_file(run, "val"), record)
    with open(run / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        if spec.trainer == "lrnet":
            w.writerow(["epoch", "metrics/AP50", "time"])
            w.writerows([e + 1, v, 10.0] for e, v in enumerate(curve))
        else:  # ultralytics: cumulative time
            w.writerow(["epoch", "time", "metrics/mAP50(B)"])
            w.writerows([e + 1, 10.0 * (e + 1), v] for e, v in enumerate(curve))
    if spec.trainer == "ultralytics":
        P.write_json_atomic(run / "model.json", {"params": 2_927_088, "gflops_640": 12.359})


def test_lrnet_rows_train_with_the_protocols_recipe_and_ema(tmp_path):
    from experiments.hituav.run_lrnet import train_settings
    from lrnet.training.train_config import TrainConfig

    shared = train_settings(P.Layout(tmp_path), smoke=False, device="cpu", workers=1, threads=0)
    assert {k: shared[k] for k in P.RECIPE} == P.RECIPE and shared["epochs"] == P.EPOCHS
    assert (shared["ema_decay"], shared["ema_tau"]) == (P.EMA["decay"], P.EMA["tau"])
    assert TrainConfig().ema_decay == 0.9999  # the protocol pins tau; lrnet's default (auto) would differ
    by_name = {r.name: r for r in ROWS}
    assert dict(by_name["lrnet-n EMA tau 100"].variant.options) == {"ema_tau": 100.0}


def test_lrnet_yolov8n_p2_has_ultralytics_parameter_count():
    # 2,927,088: ultralytics' own count of its 4-class yolov8n-p2 (the smoke run's model.json)
    model = build_model("yolov8n-p2", nc=len(P.CLASSES))
    assert sum(p.numel() for p in model.parameters()) == 2_927_088


def test_report_from_fake_runs(tmp_path, monkeypatch):
    real_size = report.model_size

    def fast_size(spec, runs, root, cache=None):  # lrnet's counts are tested above; 4 models are slow
        return (1.5, 6.0, "lrnet") if spec.trainer == "lrnet" else real_size(spec, runs, root, cache)

    monkeypatch.setattr(report, "model_size", fast_size)
    specs = {s.name: s for s in report.table_rows()}
    runs = tmp_path / "runs"
    for seed, (a, b, t0, t1) in enumerate(
        [(0.10, 0.13, 0.20, 0.22), (0.12, 0.16, 0.25, 0.26), (0.14, 0.17, 0.30, 0.33)]
    ):
        _fake_run(runs, specs["ultralytics yolov8n-p2"], seed, a, t0, [0.05, 0.2])
        _fake_run(runs, specs["lrnet-n"], seed, b, t1, [0.04, 0.1, 0.3])
    _fake_run(runs, specs["lrnet yolov8n-p2"], 0, 0.11, 0.2, [0.1, 0.2])
    md = tmp_path / "REAL.md"
    begin, end = "<!-- hituav-report:val:begin -->", "<!-- hituav-report:val:end -->"
    md.write_text(f"# title\n\n## Results\n\n{begin}\nold\n{end}\n\ntail\n")
    opts = report.ReportOptions(runs=str(runs), markdown=str(md))
    report.write_report(opts)
    text = md.read_text()
    assert text.startswith(
        "# title\n\n## Results\n\n<!-- hituav-report:val:begin -->\n### Development (val, 290"
    )
    assert text.endswith("<!-- hituav-report:val:end -->\n\ntail\n") and "\nold\n" not in text
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("| lrnet-n | lrnet |"))
    assert "| 0,1,2 | 15.33 ± 2.08 |" in row  # AP mean ± std of 13, 16, 17
    assert "| n/a |" in row  # APvt: no ground truth in the bin
    p2 = next(line for line in lines if line.startswith("| ultralytics yolov8n-p2 | ultralytics |"))
    assert "| 2.927 | 12.4 | 0,1,2 | 12.00 ± 2.00 |" in p2
    missing = next(line for line in lines if line.startswith("| lrnet yolov8n | lrnet |"))
    assert "| none | missing |" in missing
    assert "lrnet yolov8n seed 0" in text and "lrnet yolov8n-p2 seed 1" in text  # listed as missing
    pair = next(line for line in lines if line.startswith("| lrnet-n | ultralytics yolov8n-p2 |"))
    assert "| 0,1,2 | **+3.33 ± 0.58** |" in pair and pair.endswith("| AP: ahead (+3.33) |")
    one_seed = next(line for line in lines if line.startswith("| lrnet-n | lrnet yolov8n-p2 |"))
    assert "needs 2+ paired seeds" in one_seed
    assert "`predict lrnet-n 2`; `score lrnet-n 2`" in text  # every run's own commands
    assert (tmp_path / "hituav_ap50.png").stat().st_size > 0
    times = next(line for line in lines if line.startswith("| ultralytics yolov8n-p2 | 3 |"))
    assert times == "| ultralytics yolov8n-p2 | 3 | 0.3 | 10.0 | 0.100 |"  # cumulative time made per epoch
    report.write_report(opts)
    assert md.read_text() == text  # regenerating gives the same file


def test_report_without_runs_is_an_error_and_a_new_file_gets_the_block(tmp_path):
    opts = report.ReportOptions(runs=str(tmp_path / "none"), markdown=str(tmp_path / "r.md"))
    with pytest.raises(DataError, match=r"no run has scores/val\.json"):
        report.write_report(opts)
    assert report.replace_between_markers("x\n", "test", "body") == (
        "x\n\n<!-- hituav-report:test:begin -->\nbody\n<!-- hituav-report:test:end -->\n"
    )
    json.dumps(report.ReportOptions(smoke=True).markdown)  # the smoke report has its own default file
    assert report.ReportOptions(smoke=True).markdown.endswith("hituav-smoke/REPORT.md")


def test_kept_records_give_the_same_report_and_only_the_tables_runs_keep_them(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "model_size", lambda spec, runs, root, cache=None: (1.5, 6.0, "lrnet"))
    spec = {s.name: s for s in report.table_rows()}["lrnet-n"]
    runs, records = tmp_path / "runs", tmp_path / "records"
    for seed in (0, 1):
        _fake_run(runs, spec, seed, 0.1 + seed / 100, 0.2, [0.05, 0.1])
        run = P.run_dir(runs, spec.folder, seed)
        (run / "weights").mkdir()
        (run / "weights" / "last.pt").write_bytes(b"x" * 1000)  # never kept: large, machine-bound
        kept = P.keep_record(run, records, spec.folder, seed)
        assert kept == P.run_dir(records, spec.folder, seed) and not (kept / "weights").exists()
        assert (kept / "scores" / "val.json").read_bytes() == (run / "scores" / "val.json").read_bytes()
    md = str(tmp_path / "a.md")
    from_runs = report.build_report(report.ReportOptions(runs=str(runs), markdown=md))
    from_records = report.build_report(report.ReportOptions(runs=str(records), markdown=md))
    assert from_records.replace(P.shown(records), P.shown(runs)) == from_runs
    assert not list(records.rglob("*.tmp"))  # written atomically, nothing left beside
    assert P.records_root("", "", smoke=False) == P.RECORDS_ROOT  # the table's own runs
    assert P.records_root("", "", smoke=True) is None  # smoke runs never reach the repository
    assert P.records_root("", str(tmp_path), smoke=False) is None  # nor runs elsewhere (tests)
    assert P.records_root(str(records), str(tmp_path), smoke=True) == records  # unless asked
    assert report.ReportOptions().runs_root == P.RECORDS_ROOT


def test_a_run_kept_in_the_records_is_not_trained_again(tmp_path, monkeypatch):
    from experiments.hituav import run_lrnet

    data = tmp_path / "data"
    layout = P.Layout(data)
    layout.stamp.parent.mkdir(parents=True)
    layout.stamp.write_text("{}")
    records = tmp_path / "records"
    spec = {s.name: s for s in report.table_rows()}["lrnet-n"]
    _fake_run(records, spec, 0, 0.1, 0.2, [0.1])
    trained = []
    monkeypatch.setattr(run_lrnet, "run_variant", lambda variant, seed, run, settings: trained.append(seed))
    monkeypatch.setattr(run_lrnet, "score_run", lambda *a, **k: pytest.fail("nothing to score"))
    opts = run_lrnet.RunOptions(
        rows="lrnet-n", seeds="0,1", data=str(data), runs=str(tmp_path / "runs"), records=str(records)
    )
    done = run_lrnet.run_rows(opts)
    assert [d["seed"] for d in done] == [0, 1] and trained == [1]  # seed 1 has no record: trained
    assert done[0]["status"].startswith("kept in") and done[1]["status"] == "not trained"


def test_run_scripts_print_val_scores_and_keep_test_scores_sealed():
    assert P.scored_status("val", {"AP": 0.1234}) == "scored: AP 12.34"
    sealed = P.scored_status("test", {"AP": 0.1234})
    assert "12.3" not in sealed and "sealed" in sealed


def test_a_run_kept_for_val_only_is_not_trained_again_to_score_test(tmp_path, monkeypatch):
    """Its last.pt was lost with the machine that trained it: training it again would make another
    run than the recorded one, so test is not scored without --rescore, which replaces the record."""
    from experiments.hituav import run_lrnet

    data = tmp_path / "data"
    layout = P.Layout(data)
    layout.stamp.parent.mkdir(parents=True)
    layout.stamp.write_text("{}")
    records, runs = tmp_path / "records", tmp_path / "runs"
    spec = {s.name: s for s in report.table_rows()}["lrnet-n"]
    _fake_run(records, spec, 0, 0.1, 0.2, [0.1])
    trained = []
    monkeypatch.setattr(run_lrnet, "run_variant", lambda variant, seed, run, settings: trained.append(seed))
    monkeypatch.setattr(run_lrnet, "score_run", lambda *a, **k: pytest.fail("nothing to score"))
    opts = run_lrnet.RunOptions(
        rows="lrnet-n", seeds="0", data=str(data), runs=str(runs), records=str(records)
    )
    opts.split = "test"
    done = run_lrnet.run_rows(opts)
    assert trained == [] and "holds its val score, not test" in done[0]["status"]
    assert "--rescore" in done[0]["status"]

    # --rescore: a new training; its record replaces the old one, stale val score included
    _fake_run(runs, spec, 0, 0.3, 0.2, [0.1])
    run = P.run_dir(runs, spec.folder, 0)
    (run / "scores" / "val.json").rename(run / "scores" / "test.json")
    kept = P.keep_record(run, records, spec.folder, 0)
    assert sorted(p.name for p in (kept / "scores").glob("*.json")) == ["test.json"]
