"""Generators of hostile model and weights files (all small on disk, all fast to write).

- `code_torchscript`: a TorchScript "detector" whose own code creates files while it loads and runs.
- `zip_bomb_checkpoint`: a 7 MB torch zip whose tensor storages inflate to 4 x 1.75 GiB of zeros,
  written by hand (deflate blocks of 1 MiB of zeros repeated; the CRC of n zero bytes computed with
  the zero-extension operator of CRC-32), so that nothing ever holds the inflated bytes.
- `colliding_keys_checkpoint`: a pickle whose dict keys all hash alike (k * (2**61 - 1)).
- `failing_onnx`: an ONNX graph that loads but fails inside `session.run`.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import torch

from lrnet.runtime.backends.metadata import build_metadata

MiB = 2**20
HASH_MODULUS = 2**61 - 1  # hash(k * HASH_MODULUS) == 0 for every int k on 64-bit CPython


# -- TorchScript that runs its own code --------------------------------------------------------------


class MarkerModule(torch.nn.Module):
    """Creates `<marker>.load` in `__setstate__` (run by `torch.jit.load`) and `<marker>.run` in
    `forward` (`torch.from_file(shared=True)` creates the file), and returns (B, 84, 4 + nc) zeros."""

    def __init__(self, marker: str, nc: int) -> None:
        super().__init__()
        self.marker, self.nc, self.seen = marker, nc, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.marker + ".run", shared=True, size=4, dtype=torch.uint8)
        t.fill_(82)
        return torch.zeros(x.shape[0], 84, 4 + self.nc) + t.sum().float() * 0

    @torch.jit.export
    def __getstate__(self) -> tuple[str, int, bool, int]:
        return (self.marker, self.nc, self.training, self.seen)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, int, bool, int]) -> None:
        self.marker, self.nc, self.training = state[0], state[1], state[2]
        t = torch.from_file(self.marker + ".load", shared=True, size=4, dtype=torch.uint8)
        t.fill_(76)
        self.seen = int(t.sum())


def code_torchscript(path: Path, marker: Path, nc: int = 3, imgsz: int = 64) -> Path:
    """A `.torchscript` with valid lrnet metadata whose code writes `<marker>.load` / `<marker>.run`."""
    meta = build_metadata(
        [f"c{i}" for i in range(nc)], torch.tensor([8.0, 16.0, 32.0]), imgsz, nc, "fp32", False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
        module = torch.jit.script(MarkerModule(str(marker), nc))
        torch.jit.save(module, str(path), _extra_files={"lrnet.json": json.dumps(meta)})
    return path


# -- pickles and zip archives written by hand --------------------------------------------------------


def _text(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])  # BININT1
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)  # BININT
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)  # LONG1


def _dict_of(keys: Iterable[int]) -> bytes:
    """EMPTY_DICT then MARK key 1 key 1 ... SETITEMS in batches of 1000 (as pickle itself writes)."""
    out = bytearray(b"}")
    batch: list[bytes] = []
    for k in keys:
        batch.append(_int(k) + b"K\x01")
        if len(batch) == 1000:
            out += b"(" + b"".join(batch) + b"u"
            batch = []
    if batch:
        out += b"(" + b"".join(batch) + b"u"
    return bytes(out)


def _zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive of (name, payload as stored, method 0/8, crc32, inflated size) members."""
    out, central = bytearray(), bytearray()
    for name, payload, method, crc, size in members:
        offset, raw = len(out), name.encode()
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size, len(raw), 0
        )
        out += raw + payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(payload), size, len(raw), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, 0, zlib.crc32(data), len(data)


def _torch_zip(path: Path, data_pkl: bytes, extra: list[tuple[str, bytes, int, int, int]] = ()) -> Path:
    members = [_stored("archive/data.pkl", data_pkl), _stored("archive/version", b"3\n"), *extra]
    path.write_bytes(_zip(members))
    return path


def crc32_of_zeros(n: int) -> int:
    """zlib.crc32(bytes(n)) without the bytes: the one-zero-byte operator of the CRC register, squared."""
    mask = 0xFFFFFFFF
    op = [~zlib.crc32(b"\0", ~(1 << i) & mask) & mask for i in range(32)]  # column i: image of bit i

    def apply(matrix: list[int], v: int) -> int:
        r, i = 0, 0
        while v:
            if v & 1:
                r ^= matrix[i]
            v, i = v >> 1, i + 1
        return r

    reg = mask
    while n:
        if n & 1:
            reg = apply(op, reg)
        op = [apply(op, col) for col in op]
        n >>= 1
    return ~reg & mask


def _deflated_zeros(name: str, mib: int) -> tuple[str, bytes, int, int, int]:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(MiB)) + comp.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, history reset
    return name, block * mib + comp.flush(zlib.Z_FINISH), 8, crc32_of_zeros(mib * MiB), mib * MiB


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage: _Storage) -> None:
        self.storage = storage

    def __reduce__(self):
        n = self.storage.numel
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, (n,), (1,), False, OrderedDict()))


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def zip_bomb_checkpoint(path: Path, members: int = 4, mib: int = 1792) -> Path:
    """An lrnet-shaped checkpoint (~1.8 MB per member on disk) whose `members` float tensors are
    stored as deflated zeros of `mib` MiB each: 7 MB that inflate to 7 GiB with the defaults."""
    tensors = {f"w{i}": _Tensor(_Storage(str(i), mib * MiB // 4)) for i in range(members)}
    buf = io.BytesIO()
    _TorchPickler(buf, protocol=2).dump({"format": "lrnet-checkpoint", "model_cfg": {}, "model": tensors})
    storages = [_deflated_zeros(f"archive/data/{i}", mib) for i in range(members)]
    return _torch_zip(path, buf.getvalue(), storages)


def colliding_keys_checkpoint(path: Path, keys: Iterable[int], ultralytics: bool) -> Path:
    """A torch zip whose pickle holds one dict with `keys` (all mapped to 1): as the `names` of an
    ultralytics DetectionModel object (`ultralytics=True`), else of an lrnet-tagged checkpoint."""
    big = _dict_of(keys)
    if ultralytics:
        model = b"cultralytics.nn.tasks\nDetectionModel\n)\x81}" + _text("names") + big + b"sb"
        body = b"}" + _text("model") + model + b"s"
    else:
        body = b"}" + _text("format") + _text("lrnet-checkpoint") + b"s" + _text("names") + big + b"s"
    return _torch_zip(path, b"\x80\x02" + body + b".")


def stateless_ultralytics_checkpoint(path: Path) -> Path:
    """A checkpoint whose `model` is an ultralytics DetectionModel object pickled with no state at
    all (NEWOBJ without BUILD: its `__init__` never ran and no attribute was set)."""
    model = b"cultralytics.nn.tasks\nDetectionModel\n)\x81"
    return _torch_zip(path, b"\x80\x02}" + _text("model") + model + b"s.")


def colliding_keys(n: int = 300_000) -> range:
    """n integers k * (2**61 - 1): all hash to 0 on 64-bit CPython (a 3.9 MB pickle for 300k)."""
    return range(HASH_MODULUS, (n + 1) * HASH_MODULUS, HASH_MODULUS)


def aligned_keys(n: int = 300_000) -> list[int]:
    """n distinct integers below 2**61 whose low 40 bits are all zero (the same first probe slots)."""
    return [k << 40 for k in range(1, n + 1)]


# -- ONNX that fails only at run time ---------------------------------------------------------------


def failing_onnx(path: Path, kind: str = "reshape", nc: int = 3, imgsz: int = 32) -> Path:
    """An lrnet-tagged .onnx that loads but fails in `session.run`: "reshape" (a reshape to twice the
    input, computed at run time) or "huge" (ConstantOfShape of 1 x 3000 x 32000 x 6400 floats: a
    2.46 TB buffer, too large for onnxruntime to fold at load time)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])
    y = helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["b", "a", "c"])
    mult = [1, 1, 1, 2] if kind == "reshape" else [1, 1000, 1000, 200]
    nodes = [
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node(
            "Constant", [], ["mult"], value=helper.make_tensor("m", TensorProto.INT64, [4], mult)
        ),
        helper.make_node("Mul", ["shape", "mult"], ["target"]),
        helper.make_node("Reshape", ["images", "target"], ["predictions"])
        if kind == "reshape"
        else helper.make_node("ConstantOfShape", ["target"], ["predictions"]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    meta = build_metadata(
        [f"c{i}" for i in range(nc)], torch.tensor([8.0, 16.0, 32.0]), imgsz, nc, "fp32", False
    )
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
