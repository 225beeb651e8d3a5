"""Shared fixtures: tiny demo inputs made by the project's own generator and trainers.

Tiny means seconds: a dozen 320x240 images, a one-epoch YOLO pose model trained at 64 px,
and a small Keras classifier. Everything is real (Ultralytics, TensorFlow, DVC); nothing is
mocked.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import posecompress  # noqa: F401  (Ultralytics offline before it is imported)

ROOT = Path(__file__).resolve().parents[1]
TINY_PARAMS = ROOT / "tests" / "tiny_params.yaml"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A tiny demo data/ folder (pose images + activity CSVs), models not yet included."""
    from demo.generate import generate

    out = tmp_path_factory.mktemp("tiny") / "data"
    generate(out, n_train=12, n_val=6, n_act_train=400, n_act_val=120, seed=3)
    return out


@pytest.fixture(scope="session")
def tiny_yolo(tiny_data) -> Path:
    """A yolov8n-pose trained one epoch at 64 px on the tiny set: data/models/yolo_pose.pt."""
    from demo.train_baselines import train_yolo

    return train_yolo(tiny_data, epochs=1, imgsz=64, batch=4)


@pytest.fixture(scope="session")
def params_file(tmp_path_factory) -> Path:
    """The project's params.yaml with tests/tiny_params.yaml written over it, as the tests'
    project clones get it."""
    params = merged(yaml.safe_load((ROOT / "params.yaml").read_text()), yaml.safe_load(TINY_PARAMS.read_text()))
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_classifier(tiny_data) -> Path:
    """A small Keras classifier over the tiny activity set, as a SavedModel."""
    from demo.train_baselines import train_classifier

    return train_classifier(tiny_data, epochs=1, widths=(64, 32))


@pytest.fixture(scope="session")
def activity(tiny_data):
    """The tiny activity dataset as the classifier stages load it."""
    from posecompress.classifier.models import load_activity

    return load_activity(tiny_data / "activity")


@pytest.fixture(scope="session")
def tiny_inputs(tiny_data, tiny_yolo, tiny_classifier) -> Path:
    """The complete tiny data/ folder: dataset and both baseline models."""
    return tiny_data


def merged(base: dict, overlay: dict) -> dict:
    """base with overlay's leaves written over it (nested dicts merged)."""
    out = dict(base)
    for k, v in overlay.items():
        out[k] = merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def run(cmd, cwd, check=True, env=None, **kw) -> subprocess.CompletedProcess:
    """Run a command with the venv's python first on PATH; output captured as text. `env`: the
    environment to start from (default: this process's)."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.environ['PATH'])}"
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def configure_git(repo) -> None:
    run(["git", "config", "user.email", "test@example.com"], repo)
    run(["git", "config", "user.name", "test"], repo)


def make_project(dest: Path, tiny_inputs: Path) -> Path:
    """A fresh git repository holding the project's files, the tiny inputs in data/ tracked by
    DVC, and params.yaml overlaid with tests/tiny_params.yaml; committed once."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).stdout.split("\0")
    skip_dirs = ("data/", "demo-remote/", "metrics/", "report/figures/", "plots/")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and (not rel.startswith(skip_dirs) or rel.endswith(".gitkeep")) \
                and rel not in ("dvc.lock", "data.dvc", "report/report.md"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    shutil.copytree(tiny_inputs, dest / "data", ignore=shutil.ignore_patterns("*.cache"))
    params = merged(yaml.safe_load((dest / "params.yaml").read_text()),
                    yaml.safe_load(TINY_PARAMS.read_text()) or {})
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], dest)
    configure_git(dest)
    run(["dvc", "add", "-q", "data"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny project"], dest)
    return dest


@pytest.fixture(scope="session")
def finished_project(tmp_path_factory, tiny_inputs):
    """(repo, remote, repro output): the tiny project after one `dvc repro` of the whole
    pipeline, committed, and pushed with its run-cache to a local remote. Commit 1 has no
    dvc.lock; commit 2 (HEAD) has the finished run. Shared by every test that needs a run, since
    the run is the slowest thing in the suite."""
    base = tmp_path_factory.mktemp("finished")
    repo, remote = make_project(base / "project", tiny_inputs), base / "remote"
    first = run(["dvc", "repro"], repo)
    run(["dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "finished run"], repo)
    # `dvc push --run-cache`, plus the objects of the run-cache's cache: false outputs
    run([sys.executable, "-m", "tools.push_run_cache"], repo)
    return repo, remote, first.stdout


# fixtures that train a model or run stages and the pipeline: a test using any of them (directly
# or through another fixture) is in the slow tier; `make test-fast` runs the rest
SLOW_FIXTURES = {"tiny_yolo", "tiny_classifier", "tiny_inputs", "finished_project", "arch_model", "activity"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
