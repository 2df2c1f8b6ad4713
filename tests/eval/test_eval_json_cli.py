import json
from pathlib import Path

from lrnet.cli import main

SAMPLE = Path("/work/shared/data/visdrone_eval_sample")


def test_eval_json_table_and_json(capsys):
    gt, dt = str(SAMPLE / "gt_coco.json"), str(SAMPLE / "detections_coco.json")
    assert main(["eval-json", gt, dt, "--protocol", "coco", "--json", "--per-class"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "coco"
    assert abs(out["AP"] - 0.0719540636) < 1e-9
    assert out["per_class"]["car"] > 0
    assert main(["eval-json", gt, dt]) == 0
    table = capsys.readouterr().out
    assert "APvt" in table and "-1 (no GT)" in table and "7.20" in table


def test_eval_json_bad_file_is_a_clear_error(capsys, tmp_path):
    assert main(["eval-json", str(tmp_path / "nope.json"), str(tmp_path / "dt.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_eval_json_flags_before_the_files(capsys):
    """`--json` is a boolean option: a bare one before GT leaves GT and DT positional."""
    gt, dt = str(SAMPLE / "gt_coco.json"), str(SAMPLE / "detections_coco.json")
    assert main(["eval-json", "--json", "--per-class", gt, dt, "--protocol", "coco"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "coco" and abs(out["AP"] - 0.0719540636) < 1e-9 and "per_class" in out
    assert main(["eval-json", "--json", "false", gt, dt]) == 0
    assert capsys.readouterr().out.startswith("protocol: aitod\n")


def test_eval_json_bad_protocol_is_one_line(capsys, tmp_path):
    assert main(["eval-json", str(tmp_path / "gt.json"), str(tmp_path / "dt.json"), "--protocol", "voc"]) == 2
    assert capsys.readouterr().err == (
        "lrnet eval-json: error: protocol='voc' is not allowed; use one of aitod, coco\n"
    )
