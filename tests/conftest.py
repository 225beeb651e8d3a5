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

import stages  # noqa: F401  (Ultralytics offline before it is imported)

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
def tiny_classifier(tiny_data) -> Path:
    """A small Keras classifier over the tiny activity set, as a SavedModel."""
    from demo.train_baselines import train_classifier

    return train_classifier(tiny_data, epochs=1, widths=(64, 32))


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


def run(cmd, cwd, check=True, **kw) -> subprocess.CompletedProcess:
    """Run a command with the venv's python first on PATH; output captured as text."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


@pytest.fixture
def project_clone(tmp_path, tiny_inputs) -> Path:
    """A fresh git repository holding the project's files, tiny inputs in data/ tracked by DVC,
    and params.yaml overlaid with tests/tiny_params.yaml."""
    clone = tmp_path / "project"
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("data/", "demo-remote/", "metrics/")) \
                and rel not in ("dvc.lock", "data.dvc"):
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / rel)
    shutil.copytree(tiny_inputs, clone / "data", ignore=shutil.ignore_patterns("*.cache"))
    params = merged(yaml.safe_load((clone / "params.yaml").read_text()),
                    yaml.safe_load(TINY_PARAMS.read_text()) or {})
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], clone)
    run(["git", "config", "user.email", "test@example.com"], clone)
    run(["git", "config", "user.name", "test"], clone)
    run(["dvc", "add", "-q", "data"], clone)
    run(["git", "add", "-A"], clone)
    run(["git", "commit", "-qm", "tiny project"], clone)
    return clone
