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
from posecompress.common.outputs import METRIC_DIGITS

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


def git_clone(repo: Path, dest: Path, rev=None) -> Path:
    """A `git clone` of repo at dest, as a colleague makes one; checked out at rev if given."""
    run(["git", "clone", "-q", str(repo), str(dest)], repo.parent)
    configure_git(dest)
    if rev:
        run(["git", "checkout", "-q", rev], dest)
    return dest


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


# The stages as dvc.yaml runs them, each in its own process, with the tiny settings several test
# modules share.

EXPORT = {"imgsz": [64, 64], "opset": 17, "simplify": True, "dynamic": False, "tolerance": 0.01, "check_images": 2}
STATIC = {"mode": "static", "calibrate_method": "MinMax", "calibration_images": 4, "per_channel": True,
          "activation_type": "QUInt8", "weight_type": "QInt8", "keep_float": "head",
          "float_stem": False}
DYNAMIC = {"mode": "dynamic", "weight_type": "QUInt8", "per_channel": False, "keep_float": "none",
           "float_stem": False}
OPENVINO = {"mode": "openvino", "preset": "mixed", "calibration_images": 4, "keep_float": "head_decoding",
            "float_stem": False}
ACCURACY = ("pose_map50", "pose_map50_95", "box_map50", "box_map50_95")
# every quantize mode's metrics, whatever its runtime
QUANTIZE_KEYS = {"mode", "runtime", "conv_total", "conv_quantized", "float_stem", "nodes_kept_float",
                 "calibration_images", "size_bytes", *ACCURACY}


def write_params(folder, **sections) -> Path:
    """folder/params.yaml holding these sections."""
    path = folder / "params.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sections))
    return path


def export_stage(folder, model, data, export=None, check=True):
    """The export_onnx stage on `model`; (result, its ONNX file, its metrics file)."""
    out, metrics = folder / "onnx" / "baseline.onnx", folder / "metrics" / "export.json"
    res = run([sys.executable, "-m", "stages.export_onnx", "--model", str(model), "--data", str(data),
               "--out", str(out), "--metrics", str(metrics),
               "--params", str(write_params(folder, export_onnx=export or EXPORT))], ROOT, check=check)
    return res, out, metrics


def quantize_stage(folder, model, data, settings, recipe=None, check=True, env=None):
    """The quantize stage on `model`; (result, its output folder, its metrics file)."""
    name = recipe or "baseline"
    out, metrics = folder / "int8" / name, folder / "metrics" / f"{name}.json"
    sections = {"recipes": {recipe: {"quantize": settings}}} if recipe else {"quantize_baseline": settings}
    cmd = [sys.executable, "-m", "stages.quantize", "--model", str(model), "--data", str(data), "--out", str(out),
           "--metrics", str(metrics), "--params", str(write_params(folder, **sections))]
    res = run(cmd + (["--recipe", recipe] if recipe else []), ROOT, check=check, env=env)
    return res, out, metrics


def stage_main(monkeypatch, name: str, *args) -> None:
    """`python -m stages.<name> args` in this process: its main() with that command line, so an
    InputError it stops with reaches the caller (run_stage, which prints it as one line and exits
    2, is left out)."""
    import importlib

    monkeypatch.setattr(sys, "argv", [f"stages.{name}", *map(str, args)])
    importlib.import_module(f"stages.{name}").main()


# how far the rounding of a metrics file (write_json: METRIC_DIGITS decimals) moves a figure
ROUNDING = 0.5 * 10 ** -METRIC_DIGITS


def ultralytics_accuracy(model, data, imgsz, batch: int, project: Path) -> dict:
    """The ACCURACY figures of a model file from Ultralytics' own validator, called directly (not
    through posecompress), its run folder under `project`: what a stage that says it validated
    that file at that size must have written, to within ROUNDING."""
    from ultralytics import YOLO

    m = YOLO(str(model), task="pose").val(data=str(data), imgsz=imgsz, batch=batch, workers=0, device="cpu",
                                          plots=False, project=str(project), name="val", exist_ok=True,
                                          verbose=False)
    return dict(zip(ACCURACY, (float(m.pose.map50), float(m.pose.map), float(m.box.map50), float(m.box.map))))


KEYS = {"kind", "runtime", "float_precision", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90",
        "latency_ms_min", "speedup_vs_onnx_fp32", "speedup_vs_best_fp32", "speedup_vs_pytorch", "size_bytes",
        "zip_bytes", "zip_ratio", "size_reduction", "size_of", "pose_map50", "pose_map50_95"}
# every benchmark variant's but PyTorch's, when benchmark.throughput_images is not 0
THROUGHPUT_KEYS = {"throughput_fps", "throughput_streams", "throughput_requests", "speedup_throughput_vs_onnx_fp32",
                   "speedup_throughput_vs_best_fp32"}
BENCH = {"imgsz": [96, 128], "images": 3, "warmup": 1, "threads": 1, "statistic": "min", "throughput_images": 4,
         "throughput_threads": 0}
# the folders of a benchmark layout: what dvc.yaml hands the stage, one {name} each
LAYOUT = ("finetune/tiny", "onnx", "export_metrics", "int8", "quantize_metrics", "peer", "peer_metrics")


def bench(root, out, data, baseline, params, check=True):
    """The benchmark on a layout (LAYOUT under `root`) with these params; `recipes: {}` (the
    baseline only) and `peers.formats: []` unless params say otherwise."""
    (out / "params.yaml").write_text(yaml.safe_dump({"recipes": {}, "peers": {"formats": []}, **params}))
    metrics, plot = out / "metrics" / "benchmark.json", out / "plots" / "variants.csv"
    res = run([sys.executable, "-m", "stages.benchmark", "--baseline", str(baseline),
               "--finetuned", str(root / "finetune" / "{name}" / "model.pt"), "--onnx", str(root / "onnx" / "{name}.onnx"),
               "--int8", str(root / "int8" / "{name}"), "--export-metrics", str(root / "export_metrics" / "{name}.json"),
               "--quantize-metrics", str(root / "quantize_metrics" / "{name}.json"),
               "--peer", str(root / "peer" / "{name}"), "--peer-metrics", str(root / "peer_metrics" / "{name}.json"),
               "--data", str(data), "--metrics", str(metrics), "--plot", str(plot), "--params", str(out / "params.yaml")],
              ROOT, check=check)
    return res, metrics, plot


SYSTEM_PARAMS = {"conf": 0.001, "iou_match": 0.5, "kpt_seen": 0.5, "kpt_occluded": 0.2,
                 "threads": 1, "max_images": 3, "sheet_images": 2}


@pytest.fixture(scope="session")
def tiny_onnx_classifier(tmp_path_factory) -> Path:
    """A real ONNX classifier: 51 keypoint values -> 20 softmax probabilities."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(51, 20), torch.nn.Softmax(dim=1)).eval()
    path = tmp_path_factory.mktemp("cls") / "classifier.onnx"
    torch.onnx.export(model, (torch.zeros(1, 51),), str(path), input_names=["keypoints"],
                      dynamic_axes={"keypoints": {0: "n"}}, dynamo=False)
    return path


def system_eval_stage(out, inputs, classifier, converted, system_params, recipes, classifier_recipes, check=True):
    """system_eval on the tiny model of an inputs folder (data/) with these params; `classifier` is
    the {name} template. Each YOLO recipe's detector is a copy of the tiny model named after the
    recipe."""
    (out / "params.yaml").write_text(yaml.safe_dump({
        "system_eval": system_params, "recipes": recipes, "classifier_recipes": classifier_recipes}))
    det = str(inputs / "models" / "yolo_pose.pt")
    (out / "det").mkdir(exist_ok=True)
    for r in recipes:
        shutil.copy(det, out / "det" / f"{r}.pt")
    cmd = [sys.executable, "-m", "stages.system_eval", "--data", str(inputs / "pose" / "pose.yaml"),
           "--classes", str(inputs / "activity" / "classes.txt"), "--baseline", det, str(converted),
           "--detector", str(out / "det" / "{name}.pt"), "--classifier", str(classifier),
           "--metrics", str(out / "m.json"), "--sheet", str(out / "sheet.png"),
           "--pairs-out", str(out / "pairs.json"), "--params", str(out / "params.yaml")]
    return run(cmd, ROOT, check=check)


def labelled_people(data: Path, count: int) -> int:
    """People (label lines) in the first `count` val images of an inputs folder, read straight
    from the label files."""
    labels = data / "pose" / "labels" / "val"
    images = sorted((data / "pose" / "images" / "val").iterdir())[:count]
    return sum(1 for i in images for line in (labels / f"{i.stem}.txt").read_text().splitlines() if line.split())


# fixtures that train a model or run stages and the pipeline: a test using any of them (directly
# or through another fixture) is in the slow tier; `make test-fast` runs the rest
SLOW_FIXTURES = {"tiny_yolo", "tiny_classifier", "tiny_inputs", "finished_project", "arch_model", "activity"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
