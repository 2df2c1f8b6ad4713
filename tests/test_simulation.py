"""The box-regression simulation and `lrnet simulate`: layout, behaviour and output files."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

from lrnet import simulation
from lrnet.cli import main
from lrnet.errors import ConfigError
from lrnet.losses import box_iou_value, registered_box_losses
from lrnet.simulation import (
    SimulateJob,
    SimulationConfig,
    build_problem,
    cxcywh_to_xyxy,
    default_losses,
    regress,
    run_simulation,
)

QUICK = SimulationConfig(points=3, iterations=25, target_sizes=(4.0, 64.0), seed=1)


def test_problem_layout():
    cfg = QUICK
    problem = build_problem(cfg)
    per_target = cfg.points * len(cfg.anchor_scales) * len(cfg.aspect_ratios)
    n = per_target * len(cfg.target_sizes) * len(cfg.aspect_ratios)
    assert problem.anchors.shape == problem.targets.shape == (n, 4)
    assert int(problem.small.sum()) == n // 2  # the 4 px targets are small, the 64 px ones are not
    targets = problem.targets
    area = (targets[:, 2] - targets[:, 0]) * (targets[:, 3] - targets[:, 1])
    torch.testing.assert_close(area, torch.ones(n))  # every target has unit area in its own units
    centre = problem.anchors[:, :2].norm(dim=1)
    large = ~problem.small
    # anchors of the 64 px target lie within 3 target sizes; the 4 px target's within 3 * 16 / 4
    assert centre[large].max() <= cfg.radius + 1e-5
    assert centre[problem.small].max() <= cfg.radius * cfg.anchor_floor / 4 + 1e-5
    assert centre[problem.small].max() > cfg.radius  # floor effective: small targets start farther


def test_cxcywh_to_xyxy():
    out = cxcywh_to_xyxy(torch.tensor([[1.0, 2.0, 4.0, 6.0]]))
    torch.testing.assert_close(out, torch.tensor([[-1.0, -1.0, 3.0, 5.0]]))


def test_regression_improves_and_distance_losses_move_disjoint_boxes():
    cfg = dataclasses.replace(QUICK, anchor_floor=0.0)
    problem = build_problem(cfg)
    iou0 = box_iou_value(cxcywh_to_xyxy(problem.anchors), problem.targets).mean().item()
    results = {spec: regress(spec, problem, cfg) for spec in ("iou", "diou")}
    for res in results.values():
        assert len(res.curves["iou"]) == cfg.iterations + 1
        assert res.curves["iou"][0] == pytest.approx(iou0, rel=1e-5)
    # IoU loss has no gradient for disjoint boxes; DIoU pulls the centres together
    assert results["diou"].final("iou") > 2 * results["iou"].final("iou")
    assert results["diou"].final("distance") < 0.6 * results["diou"].curves["distance"][0]
    assert results["iou"].final("distance") > 0.9 * results["iou"].curves["distance"][0]


def test_direction_fix_drives_the_angle_cost_down():
    # LR-Net Fig. 12: with SIoU the angle cost stays high; SIoU* (Part 2) lowers it with the distance.
    problem = build_problem(QUICK)
    siou = regress("siou", problem, QUICK).final("angle_cost")
    fixed = regress("siou*", problem, QUICK).final("angle_cost")
    assert fixed < 0.7 * siou


def test_cli_quick_run_writes_table_json_and_plots(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(
        ["simulate", "--quick", "--out", str(out), "--losses", "diou", "siou", "siou*", "rsiou", "wiou-v3"]
    )
    assert code == 0
    text = capsys.readouterr().out
    for name in ("diou", "siou*", "rsiou", "wiou-v3", "targets <= 32 px", "it@0.9"):
        assert name in text
    record = json.loads((out / "results.json").read_text())
    assert set(record["losses"]) == {"diou", "siou", "siou*", "rsiou", "wiou-v3"}
    summary = record["losses"]["rsiou"]["summary"]
    assert (
        0 <= summary["final_iou"] <= 1
        and summary["final_iou"] > record["losses"]["rsiou"]["curves"]["iou"][0]
    )
    assert (out / "error_vs_iteration.png").stat().st_size > 1000
    assert (out / "angle_cost_siou.png").stat().st_size > 1000


def test_cli_rejects_bad_loss_spec(tmp_path, capsys):
    # the CLI error contract: one line on stderr naming the bad spec, exit code 2, nothing run
    code = main(["simulate", "--quick", "--out", str(tmp_path / "sim"), "--losses", "ciou", "nope"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "unknown box loss kind 'nope'" in err and "--" not in err
    assert not (tmp_path / "sim").exists()


def test_default_losses_are_every_registered_box_loss():
    assert SimulationConfig().losses == registered_box_losses()
    assert {"rsiou", "rsiou*", "siou*", "wiou-v3"} <= set(default_losses())


def test_run_simulation_writes_the_record_and_checks_before_any_work(tmp_path):
    cfg = dataclasses.replace(QUICK, iterations=3, losses=("ciou", "siou*"))
    lines: list[str] = []
    run = run_simulation(cfg, tmp_path / "sim", log=lines.append)
    assert [r.loss for r in run.results] == ["ciou", "siou*"] and run.anchors == len(
        build_problem(cfg).anchors
    )
    assert lines and lines[0].startswith(f"simulate: {run.anchors} anchors")
    assert {p.name for p in run.files} == {"results.json", "error_vs_iteration.png", "angle_cost_siou.png"}
    assert "siou*" in run.table()
    for bad, match in (
        ({"losses": ("ciou", "siou:gamma=1")}, "does not take"),
        ({"iterations": 0}, "iterations=0"),
    ):
        with pytest.raises(ConfigError, match=match):
            run_simulation(dataclasses.replace(cfg, **bad), tmp_path / "bad")
    with pytest.raises(ConfigError, match="points=0"):
        run_simulation(dataclasses.replace(cfg, points=0), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_table_columns_stay_aligned_with_long_mixture_names(tmp_path):
    long_name = "rsiou+nwd:ratio=0.5,c=12.8"
    cfg = dataclasses.replace(QUICK, iterations=2, losses=("ciou", long_name))
    table = run_simulation(cfg, tmp_path / "sim", log=lambda line: None).table()
    lines = table.splitlines()
    assert long_name in table
    # every row puts the column separators at the same offsets as the header
    header = lines[1]
    bars = [i for i, ch in enumerate(header) if ch == "|"]
    for row in lines[3:]:
        assert [i for i, ch in enumerate(row) if ch == "|"] == bars, row


def test_simulate_job_makes_the_config_and_checks_its_options():
    """`SimulateJob` (the `lrnet simulate` flags): not given = the config's default, `quick` = the
    smoke-test sizes unless given; every value is checked against its field's rule (a list's items too)."""
    assert SimulateJob().config() == SimulationConfig()
    cfg = SimulateJob(quick=True, iterations=7, losses=["ciou"], iou_goals=[0.3], seed=4).config()
    assert (cfg.iterations, cfg.points, cfg.losses, cfg.iou_goals, cfg.seed) == (
        7, simulation.QUICK["points"], ("ciou",), (0.3,), 4
    )  # fmt: skip
    for bad, message in (
        ({"iterations": 0}, "iterations=0 is out of range"),
        ({"iou_goals": [0.5, 1.5]}, "iou_goals=1.5 is out of range; use (0, 1]"),
        ({"lr": 0.0}, "lr=0.0 is out of range"),
        ({"threads": -1}, "threads=-1 is out of range"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            SimulateJob(**bad)


def test_cli_bad_option_is_one_line_before_any_work(tmp_path, capsys):
    code = main(["simulate", "--quick", "--out", str(tmp_path / "sim"), "--iou-goals", "0.5", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err == "lrnet simulate: error: iou_goals=2.0 is out of range; use (0, 1]\n"
    assert not (tmp_path / "sim").exists()
