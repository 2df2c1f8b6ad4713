"""Prepare HIT-UAV for the real-image benchmark (experiments/REAL.md); runs in lrnet's environment.

    python experiments/hituav/prepare.py [--source MIRROR|FOLDER|GIT-URL] [--data data/hituav]

Writes under `--data` (every file atomically; a rerun rewrites nothing that is already right):
- `normal_xml/`: the VOC set at the pinned commit, from a local git mirror (bare or not), a git URL
  (cloned), or a folder that holds `normal_xml/` (or is it); checked against the official counts;
- `normal_xml/ImageSets/Main/train450.txt`: `random.Random(0).sample(sorted(train ids), 450)`, the
  protocol's subset; the smoke run's budget: `smoke16.txt` (the subset's first 16 ids),
  `smoke_val16.txt` and `smoke_test16.txt` (the first 16 ids of the official val and test lists);
- `hituav.yaml` (train = train450, val = val), `hituav_test.yaml` (test alone, so that development
  never reads it) and `hituav_smoke.yaml` (the smoke lists): lrnet data YAMLs with
  `ignore_classes: [DontCare]`;
- `gt_val.json`, `gt_test.json` (and `gt_smoke_*.json`): the COCO ground truth the one evaluator
  (`lrnet eval-json`) scores every detector against, DontCare boxes as `iscrowd` ignore regions;
- `yolo/`: the YOLO-format view ultralytics trains on: the subset's images with their DontCare
  regions greyed exactly as lrnet's training greys ignore regions (lossless PNG; the other images are
  copied unchanged), labels without DontCare, lists `train450.txt`, `val.txt`, `smoke16.txt`,
  `smoke_val16.txt` and the data YAMLs `hituav.yaml`, `hituav_smoke.yaml`;
- `tiles320/`: the subset cut into native-resolution 320 px tiles (the tiles row of the protocol).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml

from experiments.hituav import protocol as P
from experiments.hituav.script import run_script
from lrnet.data.augment import AugmentConfig
from lrnet.data.coco import write_coco
from lrnet.data.dataset import grey_ignore_regions
from lrnet.data.formats import load_dataset_source
from lrnet.data.images import decode_image
from lrnet.data.tiling import TileJob, tile_dataset
from lrnet.data.yolo import write_yolo_split
from lrnet.errors import ConfigError, DataError, InputFileNotFoundError
from lrnet.fileio import write_image_atomic, write_text_atomic
from lrnet.schema import Range, option

SOURCE_STAMP = ".source.json"  # inside normal_xml/: where it came from, the commit, the counts
VIEW_STAMP = "view.json"  # inside yolo/ and tiles320/: what they were made from
TILE = {"tile": 320, "overlap": 0.2, "min_visible": 0.5, "keep_empty": 0.1, "cut_as_ignore": True}


@dataclass
class PrepareOptions:
    """What prepare.py was asked to do (its flags are these fields)."""

    source: str = option(
        P.DEFAULT_MIRROR,
        help="the data set: a git mirror of the HIT-UAV repository (bare or not), a git URL, or a folder "
        "holding normal_xml/ (or normal_xml itself)",
    )
    data: str = option(str(P.REPO_ROOT / "data" / "hituav"), help="folder to write the prepared set into")
    commit: str = option(P.DATASET_COMMIT, help="commit of the repository to extract (git sources)")
    subset: int = option(P.SUBSET_SIZE, help="training images of the subset", rule=Range(1, 100_000))
    subset_seed: int = option(P.SUBSET_SEED, help="seed of the subset draw", rule=Range(0, 2**63 - 1))
    smoke: int = option(P.SMOKE_SIZE, help="images of the smoke list (the subset's first)", rule=Range(1))
    check_counts: bool = option(
        True, help="refuse a set whose image and list counts differ from the official release"
    )
    yolo: bool = option(True, help="write the YOLO view for ultralytics")
    tiles: bool = option(True, help="write the native-resolution tiles of the subset (the tiles row)")


# -- extraction ----------------------------------------------------------------------------------
def _git(*args: str, cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise InputFileNotFoundError("git is not installed; install git or give a folder of the data") from e
    except subprocess.CalledProcessError as e:
        raise DataError(f"git {' '.join(args)} failed: {e.stderr.strip() or e}") from e
    return out.stdout.strip()


def _is_git_url(source: str) -> bool:
    return "://" in source or source.startswith("git@")


def _git_dir(path: Path) -> Path | None:
    """The git directory of the repository at `path` (bare, or a checkout whose top is `path`), else
    None: a data folder that merely lies inside some repository is a folder, not the data set's git."""
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path
    if (path / ".git").exists():
        return Path(_git("-C", str(path), "rev-parse", "--absolute-git-dir"))
    return None


def _voc_folder(path: Path) -> Path | None:
    """`path/normal_xml` or `path` itself when it is a VOC root with the official lists."""
    for cand in (path / P.VOC_FOLDER, path):
        if (cand / "Annotations").is_dir() and (cand / "JPEGImages").is_dir():
            return cand
    return None


def _archive(git_dir: Path, commit: str, dest: Path) -> str:
    """Extract `normal_xml/` of `commit` into `dest`; returns the full commit hash."""
    try:
        full = _git("--git-dir", str(git_dir), "rev-parse", "--verify", f"{commit}^{{commit}}")
    except DataError as e:
        raise DataError(f"{git_dir}: no commit {commit} ({e}); fetch it into the mirror first") from e
    try:
        _git("--git-dir", str(git_dir), "rev-parse", "--verify", f"{full}:{P.VOC_FOLDER}")
    except DataError as e:
        raise DataError(f"{git_dir}: commit {commit} has no {P.VOC_FOLDER}/; is it {P.DATASET_REPO}?") from e
    with subprocess.Popen(
        ["git", "--git-dir", str(git_dir), "archive", full, P.VOC_FOLDER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:  # streamed: never all in memory
            tar.extractall(dest, filter="data")
        err = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise DataError(f"{git_dir}: git archive of {P.VOC_FOLDER}/ at {commit} failed: {err}")
    return full


def count_voc(voc: Path) -> dict[str, int]:
    """Images, annotations and the official list lengths of a VOC folder."""
    counts = {
        "images": sum(1 for _ in (voc / "JPEGImages").glob("*.jpg")),
        "annotations": sum(1 for _ in (voc / "Annotations").glob("*.xml")),
    }
    for split in P.OFFICIAL_COUNTS:
        lst = voc / "ImageSets" / "Main" / f"{split}.txt"
        counts[split] = len(read_ids(lst)) if lst.is_file() else 0
    return counts


def check_official_counts(counts: dict[str, int], origin: str) -> None:
    want = {"images": P.IMAGES_TOTAL, "annotations": P.IMAGES_TOTAL, **P.OFFICIAL_COUNTS}
    wrong = {k: (counts.get(k), v) for k, v in want.items() if counts.get(k) != v}
    if wrong:
        detail = ", ".join(f"{k} {got} (expected {exp})" for k, (got, exp) in wrong.items())
        raise DataError(
            f"{origin}: not the HIT-UAV release of the protocol ({detail}); extract commit "
            f"{P.DATASET_COMMIT} of {P.DATASET_REPO}, or turn the count check off for another version"
        )


def extract(source: str, dest_root: Path, commit: str = P.DATASET_COMMIT, check_counts: bool = True) -> Path:
    """`dest_root/normal_xml` from `source` (see `PrepareOptions.source`); nothing is done when it
    already holds what `source`/`commit` gives. Extracted into a temporary folder, then renamed."""
    dest_root.mkdir(parents=True, exist_ok=True)
    voc = dest_root / P.VOC_FOLDER
    stamp = voc / SOURCE_STAMP
    if stamp.is_file():
        done = json.loads(stamp.read_text(encoding="utf-8"))
        if done.get("requested") == [source, commit]:
            return voc
    elif voc.exists():
        raise DataError(
            f"{voc} exists but was not written by prepare.py (no {SOURCE_STAMP}); remove it or choose "
            "another data folder"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_root))
    try:
        origin: dict[str, Any]
        if _is_git_url(source):
            clone = tmp / "clone.git"
            _git("clone", "--bare", "--quiet", source, str(clone))
            full = _archive(clone, commit, tmp)
            origin = {"url": source, "commit": full}
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise InputFileNotFoundError(
                    f"data source {path} does not exist; give a git mirror or checkout of "
                    f"{P.DATASET_REPO}, its URL ({P.DATASET_URL}), or a folder holding {P.VOC_FOLDER}/"
                )
            git_dir = _git_dir(path)
            if git_dir is not None:  # the pinned commit, not whatever a checkout holds now
                full = _archive(git_dir, commit, tmp)
                origin = {"git_dir": str(git_dir), "commit": full}
            elif (folder := _voc_folder(path)) is not None:
                shutil.copytree(folder, tmp / P.VOC_FOLDER)
                origin = {"folder": str(folder.resolve())}
            else:
                raise InputFileNotFoundError(
                    f"{path} is neither a git repository nor a folder holding {P.VOC_FOLDER}/ "
                    "(Annotations/, JPEGImages/); give the HIT-UAV repository or its normal_xml folder"
                )
        staged = tmp / P.VOC_FOLDER
        if not (staged / "Annotations").is_dir():
            raise DataError(f"{source}: no {P.VOC_FOLDER}/Annotations in it; is it the HIT-UAV repository?")
        counts = count_voc(staged)
        if check_counts:
            check_official_counts(counts, source)
        P.write_json_atomic(
            staged / SOURCE_STAMP, {"requested": [source, commit], "origin": origin, "counts": counts}
        )
        if voc.exists():  # a stamped extraction from another source: replaced whole
            shutil.rmtree(voc)
        staged.rename(voc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return voc


# -- lists, YAMLs, ground truth ---------------------------------------------------------------------
def read_ids(path: Path) -> list[str]:
    """Image ids of a VOC list file (first word of each non-empty line)."""
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def draw_subset(train_ids: list[str], size: int, seed: int) -> list[str]:
    """The protocol's draw: `random.Random(seed).sample(sorted(train_ids), size)`, in drawn order."""
    if size > len(train_ids):
        raise ConfigError(f"subset of {size} images asked from a train list of {len(train_ids)}; ask fewer")
    return random.Random(seed).sample(sorted(train_ids), size)


def write_lists(layout: P.Layout, subset: int, seed: int, smoke: int) -> dict[str, list[str]]:
    """`train<subset>.txt` (the protocol's draw) and the smoke lists: the subset's first `smoke`
    ids, and the first `smoke` ids of the official val and test lists."""
    official = {}
    for split in ("train", *P.SPLITS):
        path = layout.list_file(split)
        if not path.is_file():
            raise InputFileNotFoundError(f"{path} does not exist; the set needs its official {split} list")
        official[split] = read_ids(path)
    drawn = draw_subset(official["train"], subset, seed)
    if smoke > subset:
        raise ConfigError(f"smoke list of {smoke} images is larger than the subset ({subset}); ask fewer")
    lists = {P.subset_list_name(subset): drawn, P.smoke_list_name(smoke): drawn[:smoke]}
    lists |= {P.smoke_list_name(smoke, split): official[split][:smoke] for split in P.SPLITS}
    for name, ids in lists.items():
        write_text_atomic(layout.list_file(name), "".join(f"{i}\n" for i in ids))
    return lists


def _voc_yaml(splits: dict[str, str]) -> str:
    cfg = {
        "path": P.VOC_FOLDER,
        "format": "voc",
        **{split: {"root": ".", "set": name} for split, name in splits.items()},
        "names": list(P.NAMES),
        "ignore_classes": list(P.IGNORE_CLASSES),
    }
    return yaml.safe_dump(cfg, sort_keys=False)


def write_data_yamls(layout: P.Layout, subset: int, smoke: int) -> list[Path]:
    """The lrnet data YAMLs (the test list has its own YAML so that development never reads it)."""
    files = {
        layout.data_yaml: {"train": P.subset_list_name(subset), "val": "val"},
        layout.smoke_yaml: {"train": P.smoke_list_name(smoke)}
        | {split: P.smoke_list_name(smoke, split) for split in P.SPLITS},
        layout.test_yaml: {"test": "test"},
    }
    for path, splits in files.items():
        write_text_atomic(path, _voc_yaml(splits))
    return list(files)


def write_ground_truth(layout: P.Layout) -> dict[str, Path]:
    """`gt_<split>.json` of the scored splits and `gt_smoke_<split>.json` of the smoke lists (file
    names relative to the data folder)."""
    out = {}
    for split in P.SPLITS:
        for smoke in (False, True):
            source = load_dataset_source(layout.scored_yaml(split, smoke), split, verbose=False)
            path = layout.gt(split, smoke)
            out[path.stem] = write_coco(source, path, relative_to=layout.root)
    return out


# -- the YOLO view and the tiles -------------------------------------------------------------------
def _view_is_current(folder: Path, want: dict[str, Any]) -> bool:
    stamp = folder / VIEW_STAMP
    return stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == want


def _swap_in(staged: Path, final: Path) -> None:
    """Replace `final` by the complete `staged` folder (the old one is removed only then)."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staged.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(final)


def write_yolo_view(layout: P.Layout, subset: int, smoke: int, lists: dict[str, list[str]]) -> Path:
    """The YOLO view of the subset and of val (see the module docstring); returns its data YAML.

    ultralytics has no ignore regions, so DontCare boxes leave its labels, and in the training images
    their pixels get the pad value as lrnet's training does (`grey_ignore_regions`): both trainers
    see the same pixels and neither is taught that a DontCare object is background. Evaluation is
    the same for both (`gt_<split>.json`, DontCare as ignore regions)."""
    want = {"lists": lists, "names": list(P.CLASSES)}
    if _view_is_current(layout.yolo, want):
        return layout.yolo_yaml
    staged = Path(tempfile.mkdtemp(prefix=".yolo-", dir=layout.root))
    try:
        pad = AugmentConfig().pad_value
        names: dict[str, list[str]] = {}
        for split in ("train", "val"):
            source = load_dataset_source(layout.data_yaml, split, verbose=False)
            copy = split != "train"  # val is copied unchanged; train is written below
            write_yolo_split(source, staged, split, copy_images=copy)
            written = []
            for r in source.records:
                name = Path(r.im_file).name
                if split == "train" and len(r.ignore):
                    name = Path(name).with_suffix(".png").name
                    img = grey_ignore_regions(decode_image(r.im_file), r, pad)
                    write_image_atomic(staged / "images" / split / name, img)
                elif split == "train":
                    shutil.copyfile(r.im_file, staged / "images" / split / name)
                written.append(f"./images/{split}/{name}")
            names[split] = written
        by_stem = {Path(p).stem: p for p in names["train"] + names["val"]}
        subset_name, smoke_name = P.subset_list_name(subset), P.smoke_list_name(smoke)
        smoke_val = P.smoke_list_name(smoke, "val")
        list_files = {
            name: [by_stem[i] for i in lists[name]] for name in (subset_name, smoke_name, smoke_val)
        } | {"val": names["val"]}
        for name, entries in list_files.items():
            write_text_atomic(staged / f"{name}.txt", "".join(f"{e}\n" for e in entries))
        for yaml_path, train, val in (
            (layout.yolo_yaml, subset_name, "val"),
            (layout.yolo_smoke_yaml, smoke_name, smoke_val),
        ):
            # no `path` key: ultralytics then resolves the lists against this YAML's folder
            cfg = {"train": f"{train}.txt", "val": f"{val}.txt", "names": dict(enumerate(P.CLASSES))}
            write_text_atomic(staged / yaml_path.name, yaml.safe_dump(cfg, sort_keys=False))
        P.write_json_atomic(staged / VIEW_STAMP, want)
        _swap_in(staged, layout.yolo)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return layout.yolo_yaml


def write_tiles(layout: P.Layout, lists: dict[str, list[str]], subset: int) -> Path:
    """The subset cut into native-resolution tiles (`lrnet data tile`, settings `TILE`)."""
    want = {"subset": lists[P.subset_list_name(subset)], **TILE}
    if _view_is_current(layout.tiles, want):
        return layout.tiles_yaml
    staged = Path(tempfile.mkdtemp(prefix=".tiles-", dir=layout.root))
    try:
        tile_dataset(
            TileJob(src=str(layout.data_yaml), out=str(staged), splits=["train"], verbose=False, **TILE)
        )
        P.write_json_atomic(staged / VIEW_STAMP, want)
        _swap_in(staged, layout.tiles)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return layout.tiles_yaml


def prepare(opts: PrepareOptions) -> dict[str, Any]:
    """Every step of the module docstring; returns what was written (also in `prepared.json`)."""
    layout = P.Layout(Path(opts.data).resolve())
    voc = extract(opts.source, layout.root, opts.commit, opts.check_counts)
    lists = write_lists(layout, opts.subset, opts.subset_seed, opts.smoke)
    yamls = write_data_yamls(layout, opts.subset, opts.smoke)
    gts = write_ground_truth(layout)
    summary: dict[str, Any] = {
        "voc": str(voc),
        "source": json.loads((voc / SOURCE_STAMP).read_text(encoding="utf-8")),
        "lists": {k: len(v) for k, v in lists.items()},
        "data_yamls": [str(p) for p in yamls],
        "ground_truth": {k: str(v) for k, v in gts.items()},
    }
    if opts.yolo:
        summary["yolo_yaml"] = str(write_yolo_view(layout, opts.subset, opts.smoke, lists))
    if opts.tiles:
        summary["tiles_yaml"] = str(write_tiles(layout, lists, opts.subset))
    P.write_json_atomic(layout.stamp, summary)
    return summary


def _main(opts: PrepareOptions) -> int:
    summary = prepare(opts)
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_script("prepare.py", "Prepare HIT-UAV for experiments/REAL.md", PrepareOptions, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
