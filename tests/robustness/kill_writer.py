"""Kill-during-write harness: a child process rewrites one checkpoint or ONNX file in a loop; the
parent SIGKILLs it at random moments and checks after every kill that the file still loads.

`kill_loop` is used by tests/robustness/test_kill_during_write.py and, with more kills, by
benchmarks/bench_kill_writes.py. Children come from a fork server (POSIX only). A kill that lands during
a write leaves that write's temporary file behind: those are counted (`mid_write`) and removed, as
the next run of the trainer would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

IMGSZ = 64


def _model():
    import torch

    from lrnet.nn import build_model

    torch.manual_seed(0)
    return build_model("yolov8n", nc=3)


def write_once(kind: str, path: Path, model=None, tag: int = 0) -> None:
    """One complete write of `path` (a checkpoint or an ONNX export of a tiny yolov8n)."""
    from lrnet.jobs.onnx_export import export_model_onnx
    from lrnet.weights.checkpoint import save_checkpoint

    model = model if model is not None else _model()
    if kind == "checkpoint":
        save_checkpoint(
            path,
            {"model_cfg": model.cfg, "names": ["a", "b", "c"], "model": model.state_dict(), "epoch": tag},
        )
    else:
        export_model_onnx(model, path, imgsz=IMGSZ, names=["a", "b", "c"])


def check_file(kind: str, path: Path) -> str:
    """'' when `path` is a complete, loadable file of `kind`; else the reason it is not."""
    try:
        if kind == "checkpoint":
            from lrnet.weights.checkpoint import load_model

            load_model(path)
        else:
            import onnx

            proto = onnx.load(str(path))
            onnx.checker.check_model(proto)
            meta = {p.key: p.value for p in proto.metadata_props}
            if json.loads(meta.get("names", "null")) != ["a", "b", "c"]:
                return "no metadata"
            from lrnet.runtime.onnx_backend import OnnxModel

            OnnxModel(path)
    except Exception as e:  # any failure to load is what this harness counts
        return f"{type(e).__name__}: {str(e)[:100]}"
    return ""


def _rewrite_forever(kind: str, path: str, ready) -> None:
    """Child: build the model, say so, rewrite `path` until killed."""
    import torch

    torch.set_num_threads(1)
    model = _model()
    ready.set()
    tag = 1
    while True:
        write_once(kind, Path(path), model, tag)
        tag += 1


def kill_loop(kind: str, folder: Path, kills: int, seed: int = 0, max_delay: float = 10.0) -> dict:
    """SIGKILL a rewriting child `kills` times, each at a random moment of a write; count unusable files.

    Children come from a small fork server with torch preloaded (not from the caller, whose memory
    may be large), so a kill costs about one model build and one write, not an interpreter start.
    """
    import multiprocessing as mp

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("last.pt" if kind == "checkpoint" else "model.onnx")
    model = _model()
    write_once(kind, path, model)  # the previous good file every kill must leave loadable (and warm-up)
    start = time.perf_counter()
    write_once(kind, path, model)
    duration = time.perf_counter() - start  # kills are spread over one whole write
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "lrnet.nn", "lrnet.weights.checkpoint"])
    unusable: list[str] = []
    mid_write = 0
    for _ in range(kills):
        ready = ctx.Event()
        child = ctx.Process(target=_rewrite_forever, args=(kind, str(path), ready), daemon=True)
        child.start()
        try:
            if not ready.wait(timeout=120):
                raise RuntimeError("the writer child never got ready")
            time.sleep(rng.uniform(0.02, min(max_delay, 1.1 * duration)))
            os.kill(child.pid, signal.SIGKILL)
            child.join(timeout=60)
        finally:
            if child.is_alive():
                child.kill()
        reason = check_file(kind, path)
        if reason:
            unusable.append(reason)
        temporaries = list(folder.glob(".*.tmp"))
        mid_write += bool(temporaries)
        for t in temporaries:
            t.unlink()
    return {
        "kind": kind,
        "kills": kills,
        "unusable": len(unusable),
        "reasons": unusable[:3],
        "write_s": duration,
        "mid_write": mid_write,
    }
