"""`.xml` OpenVINO IR (with its `.bin` beside it) run with the `openvino` runtime (optional extra)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from lrnet.errors import DependencyError, ExportError
from lrnet.runtime.backends.base import ExportedModel, run_failure
from lrnet.runtime.backends.metadata import META_KEYS, parse_metadata
from lrnet.runtime.backends.registry import register_backend

RT_SECTION = "lrnet"

_CORE: Any = None
_CORE_LOCK = threading.Lock()


def import_openvino() -> Any:
    """The openvino module, or `DependencyError` saying which extra to install."""
    try:
        import openvino
    except ImportError as e:
        raise DependencyError(
            f"OpenVINO is not installed ({e}); install the openvino extra: pip install 'lrnet[openvino]'"
        ) from e
    return openvino


def shared_core() -> Any:
    """The one `openvino.Core` of this process, created on first use and kept until exit.

    Why only one: every `Core` builds its own instance of OpenVINO's CPU plugin on its first CPU
    compile. Each instance installs a fresh mmap'd alternate signal stack (`sigaltstack`) on the
    calling thread and, when destroyed, unmaps it, putting the previous stack back only if its own
    is still the current one (OpenVINO's `SigAltStackSetup`, src/plugins/intel_cpu/src/
    sigstack_manager.cpp, formerly plugin.cpp; seen in 2026.4.1). Two instances freed in the order
    they were made (a model is freed whenever Python drops it) leave the thread's alternate stack on
    unmapped memory: the next signal whose handler runs on it -- every Python-level handler does
    (SA_ONSTACK), e.g. the SIGCHLD handler of torch's DataLoader, as does faulthandler's -- kills
    the process with SIGSEGV (si_code SI_KERNEL) before any handler runs, or, if the address was
    mapped again meanwhile, writes the signal frame over that memory. One Core means one plugin
    instance, built once and never torn down under a live model.
    """
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = import_openvino().Core()
        return _CORE


def read_rt_metadata(model: Any) -> dict[str, str]:
    """The lrnet metadata stored in an OpenVINO model's rt_info (missing keys left out)."""
    meta = {}
    for key in (*META_KEYS, "producer"):
        if model.has_rt_info([RT_SECTION, key]):
            meta[key] = str(model.get_rt_info([RT_SECTION, key]).astype(str))
    return meta


@register_backend(".xml")
class OpenVinoModel(ExportedModel):
    """An OpenVINO IR compiled for `device` (default CPU) with fp32 arithmetic for fp32 models
    (OpenVINO would otherwise pick bf16 on CPUs that have it). Every model is compiled by the process's
    one Core (`shared_core`, which says why)."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "CPU") -> None:
        super().__init__(path)
        core = shared_core()  # DependencyError first when OpenVINO is missing
        if not self.path.with_suffix(".bin").is_file():
            raise ExportError(
                f"{self.path}: its weights {self.path.with_suffix('.bin').name} are missing beside it"
            )
        try:
            model = core.read_model(str(self.path))
        except Exception as e:  # openvino raises RuntimeError for files that are not IR
            raise ExportError(
                f"{self.path}: not a loadable OpenVINO IR ({type(e).__name__}: {str(e).strip()[:200]}); "
                "export it again"
            ) from e
        self.set_meta(parse_metadata(read_rt_metadata(model), self.path))
        config: dict[str, Any] = {}
        if self.precision != "fp16":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, device, config)
        shape = self.compiled.input(0).get_partial_shape()
        self.fixed_batch = None if shape[0].is_dynamic else int(shape[0].get_length())
        self.request = self.compiled.create_infer_request()

    def run(self, x: np.ndarray) -> np.ndarray:
        try:
            return self.request.infer({0: x})[0].copy()
        except Exception as e:  # OpenVINO raises RuntimeError and its own types from inference
            raise run_failure(self.path, e) from e
