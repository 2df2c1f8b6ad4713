"""Kill-during-write harness: a child process writes one checkpoint or ONNX file and is SIGKILLed
mid-write; the parent then checks that the file still loads.

Two ways to kill:

- `kill_at` (tests/robustness/test_kill_during_write.py): the child SIGKILLs itself at a named point
  of the write (`KILL_POINTS`), reached through `lrnet.fileio.write_point_hook` and through wrappers
  around the writers themselves (torch.save, torch.onnx.export, onnx.save). Deterministic: the kill
  lands at that point on any machine, quiet or busy.
- `kill_loop` (benchmarks/bench_kill_writes.py): the parent SIGKILLs a child that rewrites the file
  in a loop at random moments. Which part of a write a kill hits depends on the machine's speed, so
  only the benchmark uses it.

Children come from a fork server (POSIX only). A kill that lands before the rename leaves that
write's temporary file behind; the next run of the trainer removes it (`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

IMGSZ = 64
# Where `kill_at` stops a write, in the order a write reaches them. "created", "written", "synced" and
# "replaced" are `lrnet.fileio.WRITE_POINTS` (temporary file created; written and flushed; fsynced;
# renamed over the target). The others are inside the writer: "half" = half of the final bytes are
# in the temporary file (checkpoint: torch.save's; ONNX: the rewrite with metadata by onnx.save),
# "graph" = torch.onnx.export wrote the bare graph, without metadata, into the temporary file.
KILL_POINTS = {
    "checkpoint": ("created", "half", "written", "synced", "replaced"),
    "onnx": ("created", "graph", "half", "written", "synced", "replaced"),
}
PRELOAD = ["torch", "lrnet.nn", "lrnet.weights.checkpoint"]


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


def target_path(kind: str, folder: Path) -> Path:
    return folder / ("last.pt" if kind == "checkpoint" else "model.onnx")


@contextlib.contextmanager
def _writers_reporting(kind: str, reach: Callable[[str], None]) -> Iterator[None]:
    """Wrap the writers `write_once` uses so that they call `reach` at the points inside a write."""
    import torch

    if kind == "checkpoint":
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            reach("half")
            f.write(data[len(data) // 2 :])

        torch.save = save
        try:
            yield
        finally:
            torch.save = real_save
        return

    import onnx

    real_export, real_onnx_save = torch.onnx.export, onnx.save

    def export(*args, **kwargs):
        out = real_export(*args, **kwargs)
        reach("graph")
        return out

    def onnx_save(proto, f, *args, **kwargs):
        data = proto.SerializeToString()
        with open(f, "wb") as out:
            out.write(data[: len(data) // 2])
        reach("half")
        real_onnx_save(proto, f, *args, **kwargs)

    torch.onnx.export, onnx.save = export, onnx_save
    try:
        yield
    finally:
        torch.onnx.export, onnx.save = real_export, real_onnx_save


def _write_and_die_at(kind: str, path: str, point: str, tag: int, log: str) -> None:
    """Child: write `path` once, appending every point reached to `log`; SIGKILL itself at `point`."""
    import torch

    from lrnet.fileio import write_point_hook

    torch.set_num_threads(1)
    model = _model()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def reach(reached: str) -> None:
        os.write(fd, f"{reached}\n".encode())  # unbuffered: on disk before the kill
        if reached == point:
            os.kill(os.getpid(), signal.SIGKILL)

    with _writers_reporting(kind, reach), write_point_hook(lambda reached, tmp: reach(reached)):
        write_once(kind, Path(path), model, tag)


def kill_at(kind: str, folder: Path, point: str, tag: int = 1) -> dict:
    """Write `kind`'s file in `folder` in a child that SIGKILLs itself at `point` (one of
    `KILL_POINTS[kind]`); returns the child's exit code and the points it reached, in order.

    Deterministic: the kill lands at `point` whatever the machine's speed or load. A child that never
    reaches `point` exits on its own (exit code 0, or 1 on an error), which the caller must check.
    """
    import multiprocessing as mp

    if point not in KILL_POINTS[kind]:
        raise ValueError(f"point {point!r}: use one of {KILL_POINTS[kind]}")
    log = folder / f".kill-{kind}-{point}.log"
    log.unlink(missing_ok=True)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    child = ctx.Process(
        target=_write_and_die_at, args=(kind, str(target_path(kind, folder)), point, tag, str(log))
    )
    child.start()
    try:
        child.join()  # no time limit here: the test's pytest-timeout marker is the safety net
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    reached = log.read_text().split() if log.is_file() else []
    log.unlink(missing_ok=True)
    return {"kind": kind, "point": point, "exitcode": child.exitcode, "reached": reached}


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
    path = target_path(kind, folder)
    model = _model()
    write_once(kind, path, model)  # the previous good file every kill must leave loadable (and warm-up)
    start = time.perf_counter()
    write_once(kind, path, model)
    duration = time.perf_counter() - start  # kills are spread over one whole write
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
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
