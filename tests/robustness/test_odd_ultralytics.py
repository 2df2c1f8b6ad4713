"""Odd but well-formed ultralytics pickles: one line, or a clean conversion; never a traceback.

Before: a model object pickled without state raised AttributeError, `names` with int and string keys
TypeError (sorting them), `_modules` as a list AttributeError, `_non_persistent_buffers_set` as an
int TypeError. The files are written by the ultralytics fixture with an `edit` of the model object
(the stateless one by hand).
"""

from __future__ import annotations

import pytest

from lrnet.cli import main
from lrnet.weights.checkpoint import load_checkpoint
from tests.fixtures.ultralytics_fixture import write_ultralytics_checkpoint
from tests.robustness import hostile_models as hm

pytestmark = pytest.mark.timeout(300)


def _modules_as_list(dm):
    first = dm.model[0]
    first.__dict__["_modules"] = list(first._modules.items())


def _odd_but_complete(dm):
    """Every tensor still there: index names keyed by int and digit string, the non-persistent
    buffer sets replaced by an int."""
    dm.names = {0: "plane", "1": "ship", 2: "car"}
    for module in list(dm.modules()):
        module.__dict__["_non_persistent_buffers_set"] = 7


def _convert(tmp_path, capsys, edit) -> tuple[int, list[str]]:
    src, out = tmp_path / "odd.pt", tmp_path / "out.pt"
    write_ultralytics_checkpoint(src, "yolov8n", nc=3, edit=edit)
    code = main(["convert-weights", str(src), str(out)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 0 or not out.exists()
    return code, err


def test_model_without_state_is_one_line(tmp_path, capsys):
    src = hm.stateless_ultralytics_checkpoint(tmp_path / "stateless.pt")
    assert main(["convert-weights", str(src), str(tmp_path / "out.pt")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "holds no model.N tensors" in err[0], err
    assert not (tmp_path / "out.pt").exists()


def test_modules_as_a_list_is_one_line(tmp_path, capsys):
    """The first layer's `_modules` is a list: its tensors are not read, so the model does not fit."""
    code, err = _convert(tmp_path, capsys, _modules_as_list)
    assert code == 2 and len(err) == 1 and "do not fit yolov8n (e.g. layers.0.conv.weight)" in err[0], err


def test_odd_attribute_types_still_convert_cleanly(tmp_path, capsys):
    code, err = _convert(tmp_path, capsys, _odd_but_complete)
    assert code == 0, err
    ckpt = load_checkpoint(tmp_path / "out.pt")
    assert ckpt["names"] == ["plane", "ship", "car"] and ckpt["model_cfg"]["name"] == "yolov8n"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        ({1: "b", 0: "a"}, ["a", "b"]),
        ({0: "a", "1": "b"}, ["a", "b"]),
        ({0: "a", "x": "b"}, None),  # a key that is not an index
        ({0: "a", 2: "c"}, None),  # an index missing
        ({0: "a", "0": "b"}, None),  # the same index twice
        ({True: "a"}, None),  # a boolean is not an index
        ({0: ["nested"]}, None),  # a name that is not text
        ("person", None),
        (7, None),
    ],
)
def test_class_names_from_odd_mappings(names, expected):
    from lrnet.weights.transfer import class_names

    assert class_names(names) == expected
