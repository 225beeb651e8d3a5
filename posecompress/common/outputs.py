"""Writing stage outputs so that an interrupted stage leaves nothing DVC could take as finished.

Every output is written under a temporary name and renamed into place only when complete; metrics
are rounded so that `dvc metrics diff` shows real changes only.

Temporary files live in the project's scratch folder (`.stage-tmp/` beside `dvc.yaml`), outside
every declared output and dependency: a stage killed with SIGKILL cannot clean up after itself, and
a stray file inside an output folder would change that folder's hash. Each entry is named after
the process that made it, and the next stage to start removes those of processes no longer alive.
"""
import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

METRIC_DIGITS = 5
SCRATCH = ".stage-tmp"


def rounded(value):
    """Floats (also nested in dicts and lists) rounded to METRIC_DIGITS significant decimals."""
    if isinstance(value, float):
        return round(value, METRIC_DIGITS)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def project_scratch(near) -> Path | None:
    """The scratch folder of the DVC project holding `near` (the folder with dvc.yaml), or None
    outside a project."""
    near = Path(near).resolve()
    for d in (near, *near.parents):
        if (d / "dvc.yaml").is_file():
            return d / SCRATCH
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_scratch(scratch: Path) -> None:
    """Remove what processes that are no longer running left in `scratch` (killed stages)."""
    for entry in scratch.glob("*"):
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def scratch_dir(prefix: str, near="."):
    """A temporary folder in the project's scratch folder (the system's outside a project),
    removed on exit; what killed processes left there is removed first."""
    scratch = project_scratch(near)
    if scratch is not None:
        scratch.mkdir(exist_ok=True)
        sweep_scratch(scratch)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{prefix}.", dir=scratch))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def no_space(path, needed: int = None) -> str:
    """One line for a write that found its file system full: the path, the space needed (when
    known) and the space free there."""
    folder = next((d for d in (Path(path), *Path(path).parents) if d.exists()), Path("."))
    free = shutil.disk_usage(folder).free
    need = f"{needed / 1e6:.1f} MB needed, " if needed is not None else ""
    return f"{path}: no space left on the device ({need}{free / 1e6:.1f} MB free there)"


def _copy(src: Path, dst: Path) -> None:
    """A file or folder copied file by file: an OSError (a full disk) is raised as it is, where
    shutil.copytree would collect it as text."""
    if src.is_file():
        shutil.copy2(src, dst)
        return
    for f in sorted(src.rglob("*")):
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.is_dir():
            target.mkdir(exist_ok=True)
        else:
            shutil.copy2(f, target)
    dst.mkdir(exist_ok=True)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as e:  # the scratch folder on another file system: copy, then rename beside dst
        if e.errno != errno.EXDEV:
            raise
        beside = dst.with_name(f".{dst.name}.{os.getpid()}")
        try:
            _copy(src, beside)
            os.replace(beside, dst)
        except BaseException as err:  # a full disk or an interrupt: no half-copied file left beside dst
            if beside.is_dir():
                shutil.rmtree(beside, ignore_errors=True)
            else:
                beside.unlink(missing_ok=True)
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                raise NoSpace(no_space(dst, tree_bytes(src))) from None
            raise


class NoSpace(OSError):
    """A write that found its file system full, with the one line that says where and how much."""


@contextmanager
def atomic_path(target):
    """Yield a temporary path for `target` (file or folder); move it into place on success. On
    failure the folders made for it are removed again, so nothing is left that looks like output."""
    target = Path(target)
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]  # innermost first
    existing = next(d for d in (target.parent, *target.parent.parents) if d.exists())
    try:
        with scratch_dir(target.name, near=existing) as tmp_dir:
            tmp = tmp_dir / target.name
            yield tmp
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                shutil.rmtree(target)
            _move(tmp, target)
    finally:
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
