"""Up-front input checks: every stage validates its files and parameters before any work.

A failed check raises `InputError`; `run_stage` turns it into one line on stderr naming the
file or parameter and exit status 2, so DVC records nothing for the stage.
"""
import errno
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from posecompress.common.pose_data import label_file, split_images, split_problems


class InputError(Exception):
    """Bad input, reported as one line before any work is done."""


def run_stage(main: Callable[[], None]) -> None:
    """Call a stage's main(); on InputError, or a write that found its disk full, print one clear
    line and exit 2 (atomic_path has removed what was half written)."""
    from posecompress.common.outputs import NoSpace, no_space

    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if not (isinstance(e, NoSpace) or e.errno == errno.ENOSPC):
            raise
        print(f"error: {e if isinstance(e, NoSpace) else no_space(e.filename or Path.cwd())}", file=sys.stderr)
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


def yaml_problem(e: yaml.YAMLError) -> str:
    """Where and what a YAML error is, as ' (line 3, column 2: expected ...)': the editor's line."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f" ({where}{getattr(e, 'problem', None) or e.__class__.__name__})"


def load_params(path, section: str) -> dict:
    """One section of params.yaml; a dotted name reaches into nested ones ("recipes.fast.prune")."""
    p = existing_file(path, "params file")
    try:
        node = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise InputError(f"params file {p}: not valid YAML{yaml_problem(e)}") from None
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


def unknown_keys(section: dict, known, name: str) -> None:
    """InputError naming the first key of a parameter section that nothing reads, and the nearest
    valid one: a typo (`ratoi: 0.5`) would otherwise leave the default in force, silently."""
    import difflib

    for key in section:
        if key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {near[0]}?" if near else f"; valid keys: {', '.join(sorted(known))}"
            raise InputError(f"parameter {name}.{key}: unknown key{hint}")


def training_device(path) -> str:
    """params.yaml's training.device, resolved (resolve_device)."""
    return resolve_device(param(load_params(path, "training"), "device", str, "training.device"),
                          "parameter training.device")


def resolve_device(value: str, name: str) -> str:
    """A training device: `auto` is the first CUDA GPU when torch sees one, else the CPU; `cpu`,
    `cuda`, `cuda:N` pass through, checked to exist (InputError naming `name` otherwise)."""
    import torch

    gpus = torch.cuda.device_count()
    if value == "auto":
        return "cuda:0" if gpus else "cpu"
    index = value.split(":", 1)[1] if value.startswith("cuda:") else "0" if value == "cuda" else None
    if value != "cpu" and not (index is not None and index.isdigit()):
        raise InputError(f"{name}: {value!r} is not one of auto, cpu, cuda, cuda:N")
    if index is not None and int(index) >= gpus:
        raise InputError(f"{name}: {value!r}, but torch sees {gpus} CUDA GPU(s); use auto or cpu")
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
    """An Ultralytics pose dataset YAML whose train and val splits hold images, all of them decodable,
    and label files that match kpt_shape and the class names (see _check_split); absolute path.

    Relative entries are resolved against the YAML's own folder (no `path:` key needed):
    Ultralytics would otherwise resolve a relative `path:` against its global datasets_dir.
    """
    p = existing_file(path, "dataset")
    try:
        spec = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"dataset {p}: not valid YAML{yaml_problem(e)}") from None
    if not isinstance(spec, dict):
        raise InputError(f"dataset {p}: not a dataset YAML mapping")
    if list(spec.get("kpt_shape") or []) != list(kpt_shape):
        raise InputError(f"dataset {p}: kpt_shape is {spec.get('kpt_shape')}, expected {list(kpt_shape)}")
    root = _dataset_root(p, spec)
    for split in ("train", "val"):
        if not spec.get(split):
            raise InputError(f"dataset {p}: no '{split}' entry")
        if not isinstance(spec[split], str):
            raise InputError(f"dataset {p}: '{split}' is {spec[split]!r}, expected one folder or image list file")
        if not (root / spec[split]).exists():
            raise InputError(f"dataset {p}: {split} images {root / spec[split]} not found")
    names = spec.get("names")
    classes = len(names) if isinstance(names, (list, dict)) else spec.get("nc")
    if not (isinstance(classes, int) and classes > 0):
        raise InputError(f"dataset {p}: no class 'names'")
    for split in ("train", "val"):
        _check_split(p, split, root / spec[split], classes, kpt_shape)
    return p.resolve()


def _check_split(dataset_yaml: Path, split: str, entry: Path, classes: int, kpt_shape) -> None:
    """InputError unless a split has images, a label file for at least one, and no image or label
    file that Ultralytics would drop or rewrite (posecompress.common.pose_data)."""
    images = split_images(entry)
    if not images:
        raise InputError(f"dataset {dataset_yaml}: no {split} images in {entry}")
    problems, labelled = split_problems(images, classes, kpt_shape)
    if problems:
        (first, why), n = problems[0], len(problems)
        raise InputError(f"dataset {dataset_yaml}: {n} bad {split} file{'s' if n > 1 else ''}, first {first}: {why}")
    if not labelled:
        raise InputError(f"dataset {dataset_yaml}: none of the {len(images)} {split} images has a label file "
                         f"(looked for {label_file(images[0])})")


def _dataset_root(dataset_yaml: Path, spec: dict) -> Path:
    """The folder a dataset YAML's split entries are relative to."""
    here = dataset_yaml.resolve().parent
    return here / spec["path"] if spec.get("path") else here


def dataset_images(dataset_yaml: Path, split: str) -> list:
    """Image files of one split of a checked pose dataset YAML, sorted."""
    spec = yaml.safe_load(Path(dataset_yaml).read_text())
    folder = _dataset_root(Path(dataset_yaml), spec) / spec[split]
    files = split_images(folder)
    if not files:
        raise InputError(f"dataset {dataset_yaml}: no {split} images in {folder}")
    return files


def named_path(template: str, name: str, flag: str) -> Path:
    """A model's path from a template naming it `{name}` (the baseline or a recipe): the one way
    dvc.yaml hands stages the paths of every recipe's outputs."""
    if template.count("{name}") != 1:
        raise InputError(f"{flag} {template}: expected a path with {{name}} once, standing for the model's name")
    return Path(template.replace("{name}", name))
