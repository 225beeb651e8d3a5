"""Up-front input checks: every stage validates its files and parameters before any work.

A failed check raises `InputError`; `run_stage` turns it into one line on stderr naming the
file or parameter and exit status 2, so DVC records nothing for the stage.
"""
import sys
from pathlib import Path
from typing import Any, Callable

import yaml


class InputError(Exception):
    """Bad input, reported as one line before any work is done."""


def run_stage(main: Callable[[], None]) -> None:
    """Call a stage's main(); on InputError print one clear line and exit 2."""
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def existing_file(path, what: str) -> Path:
    """The path, if it is a readable file (or a directory, for SavedModels)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: not found")
    if p.is_file():
        try:
            with p.open("rb") as f:
                f.read(1)
        except OSError as e:
            raise InputError(f"{what} {p}: unreadable ({e.strerror})") from None
    return p


def load_params(path, section: str) -> dict:
    """One section of params.yaml; a dotted name reaches into nested ones ("recipes.fast.prune")."""
    p = existing_file(path, "params file")
    try:
        node = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise InputError(f"params file {p}: not valid YAML ({e.__class__.__name__})") from None
    for key in section.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise InputError(f"params file {p}: no '{section}' section")
    return node


def param(section: dict, key: str, kind: type, name: str, low=None, high=None,
          choices=None, high_open: bool = False, optional: bool = False) -> Any:
    """section[key], checked for type, range [low, high] (or [low, high)) and choices.

    `name` is the dotted name shown in errors, e.g. "eval_baseline.imgsz".
    """
    if key not in section:
        if optional:
            return None
        raise InputError(f"parameter {name}: missing")
    value = section[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(f"parameter {name}: expected {kind.__name__}, got {value!r}")
    if choices is not None and value not in choices:
        raise InputError(f"parameter {name}: {value!r} is not one of {', '.join(map(str, choices))}")
    if low is not None and value < low:
        raise InputError(f"parameter {name}: {value!r} is below {low}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise InputError(f"parameter {name}: {value!r} is outside {bound}")
    return value


def image_shape(section: dict, key: str, name: str) -> list:
    """section[key] as [h, w] (one int means square), multiples of 32 in [32, 4096]."""
    value = section.get(key)
    shape = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not (isinstance(shape, list) and len(shape) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 32 <= v <= 4096 and v % 32 == 0
                    for v in shape)):
        raise InputError(f"parameter {name}: expected [h, w] or one size, multiples of 32 "
                         f"in [32, 4096], got {value!r}")
    return shape


def pose_dataset_yaml(path, kpt_shape=(17, 3)) -> Path:
    """An Ultralytics pose dataset YAML that points at existing train/val images; absolute path.

    Relative entries are resolved against the YAML's own folder (no `path:` key needed):
    Ultralytics would otherwise resolve a relative `path:` against its global datasets_dir.
    """
    p = existing_file(path, "dataset")
    try:
        spec = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        raise InputError(f"dataset {p}: not valid YAML") from None
    if not isinstance(spec, dict):
        raise InputError(f"dataset {p}: not a dataset YAML mapping")
    if list(spec.get("kpt_shape") or []) != list(kpt_shape):
        raise InputError(f"dataset {p}: kpt_shape is {spec.get('kpt_shape')}, expected {list(kpt_shape)}")
    root = _dataset_root(p, spec)
    for split in ("train", "val"):
        if not spec.get(split):
            raise InputError(f"dataset {p}: no '{split}' entry")
        target = root / spec[split]
        if not target.exists():
            raise InputError(f"dataset {p}: {split} images {target} not found")
    return p.resolve()


def _dataset_root(dataset_yaml: Path, spec: dict) -> Path:
    """The folder a dataset YAML's split entries are relative to."""
    here = dataset_yaml.resolve().parent
    return here / spec["path"] if spec.get("path") else here


def dataset_images(dataset_yaml: Path, split: str) -> list:
    """Image files of one split of a checked pose dataset YAML, sorted."""
    spec = yaml.safe_load(Path(dataset_yaml).read_text())
    folder = _dataset_root(Path(dataset_yaml), spec) / spec[split]
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})
    if not files:
        raise InputError(f"dataset {dataset_yaml}: no {split} images in {folder}")
    return files
