"""YOLO text labels: reader (with label cache) and writer, registered as data format `yolo`.

A label file holds one object per line, `class cx cy w h`, normalised to [0, 1] by the image size
(polygon lines `class x1 y1 x2 y2 ...` are read as their bounding box). It is found from the image
path by the usual rule: the last `/images/` folder becomes `/labels/` and the suffix `.txt`.
Ignore regions, which YOLO has no place for, live in an optional sidecar `<stem>.ignore` next to the
label file, one `cx cy w h` per line; other YOLO tools never read it.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from lrnet.data.cache import files_hash, load_cache, save_cache
from lrnet.data.data_yaml import YAML_SUFFIXES, YamlSplit, read_yaml_split
from lrnet.data.images import IMAGE_SUFFIXES, is_image_file, read_image_size
from lrnet.data.registry import DataFormat, register_format
from lrnet.data.source import DetectionRecord, DetectionSource, SkipCounter, dedupe_boxes, dedupe_regions
from lrnet.errors import DataError, InputFileNotFoundError
from lrnet.fileio import load_yaml, write_text_atomic

COORD_TOLERANCE = 0.01  # normalised coordinates this far outside [0, 1] are clipped, further ones dropped


def label_path_for(image_path: str | Path) -> Path:
    """images/.../x.jpg -> labels/.../x.txt (last `images` folder of the path)."""
    parts = list(Path(image_path).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def ignore_path_for(label_path: str | Path) -> Path:
    return Path(label_path).with_suffix(".ignore")


def list_images(spec: str | Path | list, root: Path, origin: str) -> list[str]:
    """Expand an image folder, a list file, a glob, or a list of those into sorted image paths.

    Relative entries are resolved against `root`. `origin` names the file that asked for them (the
    data YAML) so that a missing folder gives an error naming both.
    """
    if isinstance(spec, (list, tuple)):
        out: list[str] = []
        for item in spec:
            out.extend(list_images(item, root, origin))
        return out
    p = Path(spec)
    if not p.is_absolute():
        p = root / p
    if any(ch in str(spec) for ch in "*?["):
        files = [f for f in glob.glob(str(p), recursive=True) if is_image_file(f)]
        if not files:
            raise InputFileNotFoundError(
                f"{origin}: glob {p} matches no images ({', '.join(IMAGE_SUFFIXES)}); fix the pattern"
            )
        return sorted(files)
    if p.is_dir():
        files = [os.path.join(d, f) for d, _, names in os.walk(p) for f in names if is_image_file(f)]
        return sorted(files)
    if p.is_file() and p.suffix == ".txt":
        files = []
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line:
                continue
            q = Path(line)
            if not q.is_absolute():
                q = (p.parent / q) if line.startswith("./") else (root / q)
            files.append(str(q))
        return files
    if p.is_file() and is_image_file(p):
        return [str(p)]
    if p.exists():
        raise DataError(
            f"{origin}: {p} is neither an image folder, a .txt list of images, a glob nor an image; "
            "point the split at one of those"
        )
    raise InputFileNotFoundError(
        f"{origin}: image path {p} does not exist; fix the path (relative to 'path')"
    )


def parse_label_text(text: str, nc: int, width: int, height: int, path: str, counter: SkipCounter):
    """Parse one label file into (boxes xyxy pixels, cls); raise DataError for unparsable content."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError as exc:
            raise DataError(f"line {n}: not numbers: {line.strip()[:60]!r}") from exc
        if len(values) == 5:
            c, cx, cy, w, h = values
            rows.append((c, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        elif len(values) >= 7 and len(values) % 2 == 1:
            xs, ys = np.array(values[1::2]), np.array(values[2::2])
            rows.append((values[0], xs.min(), ys.min(), xs.max(), ys.max()))
        else:
            raise DataError(f"line {n}: expected 5 values (class cx cy w h), got {len(values)}")
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    arr = np.array(rows, dtype=np.float64)
    c, xyxy = arr[:, 0], arr[:, 1:]
    keep = np.isfinite(arr).all(1)  # nan compares false everywhere below: drop it first, by name
    if not keep.all():
        counter.drop(
            path, "non-finite value", f"{int((~keep).sum())} line(s) with nan/inf", int((~keep).sum())
        )
    bad_cls = ((c != np.round(c)) | (c < 0) | (c >= nc)) & keep
    if bad_cls.any():
        counter.drop(
            path, "unknown class", f"classes {sorted(set(c[bad_cls].tolist()))} (nc={nc})", int(bad_cls.sum())
        )
        keep &= ~bad_cls
    out_range = ((xyxy < -COORD_TOLERANCE) | (xyxy > 1 + COORD_TOLERANCE)).any(1) & keep
    if out_range.any():
        counter.drop(
            path, "coordinates out of range", f"{int(out_range.sum())} line(s)", int(out_range.sum())
        )
        keep &= ~out_range
    xyxy = xyxy.clip(0.0, 1.0)
    degenerate = ((xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])) & keep
    if degenerate.any():
        counter.drop(path, "zero size", "", int(degenerate.sum()))
        keep &= ~degenerate
    boxes = (xyxy[keep] * [width, height, width, height]).astype(np.float32)
    cls = c[keep].astype(np.int64)
    boxes, cls, n_dup = dedupe_boxes(boxes, cls)
    if n_dup:
        counter.drop(path, "duplicate", "", n_dup)
    return boxes, cls


def _parse_ignore(path: Path, width: int, height: int) -> np.ndarray:
    if not path.is_file():
        return np.zeros((0, 4), np.float32)
    vals = np.array([float(v) for v in path.read_text(encoding="utf-8").split()], np.float64).reshape(-1, 4)
    xyxy = np.concatenate([vals[:, :2] - vals[:, 2:] / 2, vals[:, :2] + vals[:, 2:] / 2], 1).clip(0, 1)
    return dedupe_regions((xyxy * [width, height, width, height]).astype(np.float32))


def _index_image(im_file: str, nc: int, counter: SkipCounter) -> dict:
    """Read one image header and its label file into a cache entry."""
    entry = {"im_file": im_file, "status": "ok", "detail": ""}
    try:
        width, height = read_image_size(im_file)
    except FileNotFoundError:
        return {**entry, "status": "missing image", "detail": ""}
    except ValueError as exc:
        return {**entry, "status": "unreadable image", "detail": str(exc)}
    entry.update(w=width, h=height)
    label = label_path_for(im_file)
    local = SkipCounter()
    try:
        text = label.read_text(encoding="utf-8") if label.is_file() else ""
        boxes, cls = parse_label_text(text, nc, width, height, str(label), local)
        ignore = _parse_ignore(ignore_path_for(label), width, height)
    except (ValueError, UnicodeDecodeError) as exc:
        return {**entry, "status": "bad labels", "detail": f"{label}: {exc}"}
    counter.merge(local)
    entry.update(boxes=boxes.tolist(), cls=cls.tolist(), ignore=ignore.tolist(), dropped=dict(local.dropped))
    return entry


def read_yolo_split(
    images: list[str], names: list[str], cache_file_path: Path | None = None, verbose: bool = True
):
    """Index YOLO images + labels into a DetectionSource, through the label cache when possible."""
    nc = len(names)
    label_files = [label_path_for(f) for f in images]
    watched = [p for pair in zip(images, label_files) for p in (pair[0], pair[1], ignore_path_for(pair[1]))]
    key = files_hash(watched, extra=f"nc={nc}")
    cache_file = cache_file_path or (label_files[0].parent.with_suffix(".cache") if label_files else None)
    counter = SkipCounter()
    payload = load_cache(cache_file, key) if cache_file else None
    if payload is None:
        from tqdm import tqdm

        entries = [
            _index_image(f, nc, counter)
            for f in tqdm(
                images, desc="indexing labels", unit="img", disable=not verbose or len(images) < 200
            )
        ]
        if cache_file is not None:
            save_cache(cache_file, key, {"entries": entries})
    else:
        entries = payload["entries"]
        for e in entries:
            for reason, n in e.get("dropped", {}).items():
                counter.dropped[reason] += n
    records = []
    for i, e in enumerate(entries):
        if e["status"] != "ok":
            counter.skip(e["im_file"], e["status"], e["detail"])
            continue
        records.append(
            DetectionRecord(e["im_file"], e["w"], e["h"], e["boxes"], e["cls"], e["ignore"], image_id=i + 1)
        )
    return DetectionSource(
        records,
        list(names),
        list(range(nc)),
        images_verified=True,
        counter=counter,
        cache_file=str(cache_file) if cache_file else "",
    )


def write_yolo_split(source: DetectionSource, out: Path, split: str, copy_images: bool = True) -> list[str]:
    """Write images/<split>/ and labels/<split>/ under `out`; return the written image paths.

    Coordinates get 8 decimals (1e-5 px at 2,000 px), so boxes survive a round trip to 1e-3 px.
    Images are copied when they exist; a missing image only writes its label (with a warning by
    the caller's reader later).
    """
    import shutil

    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    written = []
    for i, r in enumerate(source.records):
        name = Path(r.im_file).name
        if name in used:
            name = f"{i}_{name}"
        used.add(name)
        dst = img_dir / name
        if copy_images and Path(r.im_file).is_file() and Path(r.im_file).resolve() != dst.resolve():
            shutil.copyfile(r.im_file, dst)
        written.append(str(dst))
        wh = np.array([r.width, r.height, r.width, r.height], np.float64)
        lines = []
        for c, b in zip(r.cls.tolist(), r.boxes.astype(np.float64) / wh):
            lines.append(
                f"{c} {(b[0] + b[2]) / 2:.8f} {(b[1] + b[3]) / 2:.8f} {b[2] - b[0]:.8f} {b[3] - b[1]:.8f}"
            )
        label = lbl_dir / (Path(name).stem + ".txt")
        write_text_atomic(label, "\n".join(lines) + ("\n" if lines else ""))
        ign = ignore_path_for(label)
        if len(r.ignore):
            g = r.ignore.astype(np.float64) / wh
            write_text_atomic(
                ign,
                "".join(
                    f"{(b[0] + b[2]) / 2:.8f} {(b[1] + b[3]) / 2:.8f} {b[2] - b[0]:.8f} {b[3] - b[1]:.8f}\n"
                    for b in g
                ),
            )
        elif ign.exists():
            ign.unlink()
    return written


def write_yolo_dataset(source: DetectionSource, dst: Path, split: str) -> Path:
    """`write_yolo_split` under `dst` plus `dst/data.yaml` naming the split (an existing one is extended)."""
    import yaml

    dst.mkdir(parents=True, exist_ok=True)
    write_yolo_split(source, dst, split)
    data_yaml = dst / "data.yaml"
    cfg = load_yaml(data_yaml) if data_yaml.is_file() else {}
    cfg = cfg or {}
    cfg.update({"path": ".", split: f"images/{split}", "names": list(source.names)})
    if source.category_ids != list(range(len(source.names))):
        cfg["category_ids"] = list(source.category_ids)
    write_text_atomic(data_yaml, yaml.safe_dump(cfg, sort_keys=False))
    return data_yaml


@register_format
class YoloFormat(DataFormat):
    """YOLO images + labels, described by a data YAML (the default `format`)."""

    name = "yolo"
    description = "a YOLO data YAML, or a folder holding data.yaml"
    split_entry = "an image folder, a .txt list of image paths, a glob, or a list of those"
    required_keys = ("names",)
    optional_keys = ("category_ids",)

    def read(self, path: Path, split: str) -> DetectionSource:
        yaml_path = path / "data.yaml" if path.is_dir() else path
        if yaml_path.suffix.lower() not in YAML_SUFFIXES or not yaml_path.is_file():
            raise DataError(f"{path}: YOLO data is read through its data YAML; give the .yaml file")
        return read_yaml_split(yaml_path, split, verbose=False)

    def read_split(self, spec: YamlSplit) -> DetectionSource:
        names = spec.names or []
        source = read_yolo_split(
            list_images(spec.entry, spec.root, str(spec.yaml)), names, verbose=spec.verbose
        )
        category_ids = spec.cfg.get("category_ids")
        if category_ids:
            if len(category_ids) != len(names):
                raise DataError(
                    f"{spec.yaml}: {len(category_ids)} category_ids for {len(names)} names; "
                    "give one category id per class name"
                )
            source.category_ids = [int(c) for c in category_ids]
        return source

    def outputs(self, dst: Path, split: str) -> list[Path]:
        return [dst, dst / "images" / split, dst / "labels" / split, dst / "data.yaml"]

    def write(self, source: DetectionSource, dst: Path, split: str) -> Path:
        """`dst/images/<split>`, `dst/labels/<split>` and `dst/data.yaml`; returns the YAML."""
        return write_yolo_dataset(source, dst, split)
