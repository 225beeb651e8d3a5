"""Writing stage outputs so that an interrupted stage leaves nothing DVC could take as finished.

Every output is written under a temporary name beside its target and renamed into place only
when complete; metrics are rounded so that `dvc metrics diff` shows real changes only.
"""
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

METRIC_DIGITS = 5


def rounded(value):
    """Floats (also nested in dicts and lists) rounded to METRIC_DIGITS significant decimals."""
    if isinstance(value, float):
        return round(value, METRIC_DIGITS)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


@contextmanager
def atomic_path(target):
    """Yield a temporary path beside `target` (file or folder); move it into place on success. On
    failure the folders made for it are removed again, so nothing is left that looks like output."""
    target = Path(target)
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not target.exists():
            for d in made:
                try:
                    d.rmdir()
                except OSError:  # not empty: something else writes there too
                    break


def write_json(path, data: dict) -> None:
    """Write metrics atomically, floats rounded, keys in the order given."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(rounded(data), indent=2) + "\n")
