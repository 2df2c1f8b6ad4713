"""The CLI error contract: every sub-command turns a bad argument into one stderr line and exit code 2.

The list of commands is read from the CLI itself (`lrnet.cli.build_parser`), so a new sub-command
fails `test_every_command_has_a_bad_argument_case` until it gets a case here. Each case is a bad value
that gets past argparse and is refused by library code (a missing file, an impossible value).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import lrnet
from lrnet.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[1]
MISSING = "does-not-exist"  # a path below the test's tmp folder that is never created

# Command path -> arguments after it ("{tmp}" is the test's tmp folder), or None for a command that
# reads no user input (it is then run once and must succeed).
CASES: dict[tuple[str, ...], list[str] | None] = {
    ("info",): ["nope-x"],  # unknown model name
    ("simulate",): ["--quick", "--out", "{tmp}/sim", "--losses", "ciou", "nope"],  # unknown box loss
    ("data", "synth"): ["--out", "{tmp}/synth", "--train", "1", "--val", "1", "--classes", "99"],
    ("data", "convert"): ["--from", "coco", "--to", "yolo", f"{{tmp}}/{MISSING}.json", "{tmp}/conv"],
    ("data", "stats"): [f"{{tmp}}/{MISSING}.yaml"],
    ("data", "tile"): [f"{{tmp}}/{MISSING}", "{tmp}/tiled"],
    ("data", "formats"): None,
    ("train",): ["--resume", f"{{tmp}}/{MISSING}/last.pt", "--device", "cpu"],
    ("val",): ["--weights", f"{{tmp}}/{MISSING}.pt", "--data", f"{{tmp}}/{MISSING}.yaml"],
    ("predict",): ["--weights", f"{{tmp}}/{MISSING}.pt", "--source", "{tmp}"],
    ("export",): ["--weights", f"{{tmp}}/{MISSING}.pt"],
    ("benchmark",): ["--weights", "{tmp}/w.pt", "--data", "{tmp}", "--formats", "onnx-int4"],
    ("eval-json",): [f"{{tmp}}/{MISSING}_gt.json", f"{{tmp}}/{MISSING}_dt.json"],
    ("ablate",): ["components", "--project", "{tmp}/ablate", "--set", "epochz=3"],  # unknown option
    ("demo",): ["--out", "{tmp}/demo", "--imgsz", "100"],  # not a multiple of 32
    ("convert-weights",): [f"{{tmp}}/{MISSING}.pt", "{tmp}/out.pt"],
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable command path of `parser` (e.g. ("val",), ("data", "stats"))."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    return [leaf for name, p in subs[0].choices.items() for leaf in leaf_commands(p, (*prefix, name))]


LEAVES = leaf_commands(build_parser())


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrnet.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """Run every case at once (each subprocess spends most of its time importing torch)."""
    tmp = tmp_path_factory.mktemp("cli_errors")
    argvs = {
        leaf: [*leaf, *(a.replace("{tmp}", str(tmp)) for a in CASES[leaf] or [])]
        for leaf in LEAVES
        if leaf in CASES
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {leaf: pool.submit(_run, argv) for leaf, argv in argvs.items()}
        return {leaf: f.result() for leaf, f in futures.items()}


def test_every_command_has_a_bad_argument_case():
    assert {leaf[0] for leaf in LEAVES} == set(COMMANDS)
    missing = [" ".join(leaf) for leaf in LEAVES if leaf not in CASES]
    assert not missing, f"add a bad-argument case to CASES for: {missing}"


@pytest.mark.parametrize("leaf", LEAVES, ids=" ".join)
def test_bad_argument_is_one_line_and_exit_2(results, leaf):
    proc = results[leaf]
    if CASES[leaf] is None:  # reads no user input: it just has to work
        assert proc.returncode == 0, proc.stderr[-2000:]
        return
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"lrnet {leaf[0]}: error: "), lines[0]


def test_debug_flag_keeps_the_traceback(tmp_path):
    proc = _run(["--debug", "eval-json", str(tmp_path / "gt.json"), str(tmp_path / "dt.json")])
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "InputFileNotFoundError" in proc.stderr
    assert "gt.json" in proc.stderr


def test_error_message_in_process(tmp_path, capsys):
    assert main(["eval-json", str(tmp_path / "gt.json"), str(tmp_path / "dt.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lrnet eval-json: error: ") and "gt.json" in err


def test_keyboard_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("lrnet.commands.eval_json.run", interrupted)
    assert main(["eval-json", "gt.json", "dt.json"]) == 130
    assert capsys.readouterr().err == "lrnet eval-json: interrupted\n"


def test_a_bug_is_not_hidden(monkeypatch):
    def buggy(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("lrnet.commands.eval_json.run", buggy)
    with pytest.raises(ZeroDivisionError):
        main(["eval-json", "gt.json", "dt.json"])


def test_listing_the_commands_imports_no_heavy_module():
    """`lrnet --help` lists every command from the registry without importing a command's module."""
    code = (
        "import sys; from lrnet.cli import build_parser; build_parser(['--help']); "
        "print(sorted(m for m in ('torch', 'numpy', 'cv2', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", "lrnet --help must not import heavy modules: " + proc.stdout


def _raise_messages(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant inside a `raise` statement of a Python file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    out.append((node.lineno, sub.value))
    return out


def test_library_errors_never_name_a_cli_flag():
    """Library code is also called from Python and from YAML configs: it names values (imgsz=100), never
    flags (--imgsz). Only `lrnet/commands` and `lrnet/cli.py` speak in flags."""
    root = Path(lrnet.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "commands" or rel.name == "cli.py":
            continue
        for line, text in _raise_messages(path):
            words = text.split()
            if any(w.startswith("--") and len(w) > 2 and w[2].isalpha() for w in words):
                offenders.append(f"lrnet/{rel}:{line}: {text!r}")
    assert not offenders, "\n".join(offenders)
