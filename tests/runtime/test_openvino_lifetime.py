"""OpenVINO models freed in the order they were loaded leave the process able to take signals.

The whole test run used to die with SIGSEGV after the OpenVINO tests (the next child process to exit
sent SIGCHLD to the handler torch's DataLoader had installed): each model had its own `Core`, so
its own CPU plugin and alternate signal stack, and freeing them first-in first-out left the main
thread's alternate stack on unmapped memory (`lrnet.runtime.backends.openvino.shared_core`).
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="openvino not installed (pip install 'lrnet[openvino]')",
)
REPO = Path(__file__).resolve().parents[2]

# Two models loaded, freed first-in first-out, then a signal with a Python handler (one that runs on
# the alternate stack, like the DataLoader's SIGCHLD handler). Exit 3: the alternate stack points at
# memory that is not mapped; a crash (-11) when the signal arrives.
CHILD = r"""
import ctypes, faulthandler, gc, os, signal, sys
import numpy as np
from lrnet.runtime.backends import load_exported

class Stack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]

def altstack_mapped():
    s = Stack()
    if ctypes.CDLL(None).sigaltstack(None, ctypes.byref(s)) != 0 or not s.ss_sp:
        return True
    with open("/proc/self/maps") as f:
        spans = [[int(a, 16) for a in line.split()[0].split("-")] for line in f]
    return any(lo <= s.ss_sp and s.ss_sp + s.ss_size <= hi for lo, hi in spans)

faulthandler.enable()
caught = []
signal.signal(signal.SIGUSR1, lambda *_: caught.append(1))
first, second = load_exported(sys.argv[1]), load_exported(sys.argv[1])
x = np.zeros((1, 3, 32, 32), np.float32)
first.run(x), second.run(x)
del first
gc.collect()
del second
gc.collect()
if not altstack_mapped():
    print("the alternate signal stack is unmapped", flush=True)
    sys.exit(3)
os.kill(os.getpid(), signal.SIGUSR1)
print("handler ran" if caught else "handler did not run", flush=True)
"""


def tiny_ir(folder: Path) -> Path:
    """A one-operator IR with lrnet metadata, written by lrnet's own ONNX -> OpenVINO step."""
    import onnx
    from onnx import TensorProto, helper

    from lrnet.jobs.export import onnx_to_openvino
    from lrnet.runtime.backends.metadata import build_metadata

    shape = [1, 3, 32, 32]
    graph = helper.make_graph(
        [helper.make_node("Relu", ["images"], ["predictions"])],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, shape)],
    )
    src = folder / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    xml = folder / "tiny.xml"
    meta = build_metadata(["a"], torch.tensor([8.0, 16.0, 32.0]), 32, 1, "fp32", False)
    onnx_to_openvino(src, xml, meta, half=False)
    return xml


def test_models_freed_first_in_first_out_keep_signals_working(tmp_path):
    xml = tiny_ir(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(xml)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and "handler ran" in r.stdout, (r.returncode, r.stdout, r.stderr[-2000:])
