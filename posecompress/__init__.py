"""The library the pipeline's stages (stages/) and tools (tools/) share.

    common/      checks of inputs and parameters, atomic outputs, the pose dataset and images
    runtime/     exported-model formats and their runtimes (onnxruntime, OpenVINO), timing
    yolo/        the YOLO track: loading and sizing models, pruning, training, export, INT8
    classifier/  the classifier track: TF -> ONNX -> PyTorch, pruning, the activity data
    system/      the pose pair (detector + classifier) on images, and its evaluation
    report/      the report's sections and figures
    review/      the pull request's verdict

Each layer imports only the ones above it in this list (yolo and classifier are side by side),
which tests/test_layout.py checks.

Importing this package makes Ultralytics work offline for every stage, test and tool of the
project: nothing is downloaded, installed or reported at run time. Ultralytics reads its
environment variables and its settings file when it is first imported, so both are set here,
before any module imports it, and without importing it (nor torch): a tool that never runs a
model starts in a fraction of a second.
"""
import importlib.util
import json
import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("YOLO_CONFIG_DIR", str(PROJECT_ROOT / ".ultralytics"))  # settings live in the project
os.environ["YOLO_OFFLINE"] = "true"  # no hub, asset or GitHub look-ups
os.environ["YOLO_AUTOINSTALL"] = "false"  # never pip-install a missing requirement at run time
os.environ.setdefault("YOLO_VERBOSE", "false")
# NNCF sends usage telemetry unless NNCF_CI is set; OpenVINO's model converter (Ultralytics'
# OpenVINO export) asks for consent and writes ~/intel/ unless CI is set: neither may reach out.
os.environ.setdefault("NNCF_CI", "1")
os.environ.setdefault("CI", "true")

# Ultralytics' config dir under YOLO_CONFIG_DIR (ultralytics.utils.get_user_config_dir)
ULTRALYTICS_DIR = Path(os.environ["YOLO_CONFIG_DIR"]).expanduser() / "Ultralytics"


def _offline_settings() -> None:
    """Pin the Ultralytics settings the project relies on in its settings file, whatever a machine
    has left behind. Ultralytics keeps the valid keys of the file it finds and fills in the rest
    with its defaults (SettingsManager._validate_settings), so writing only these keys is enough."""
    wanted = {"sync": False, "clearml": False, "comet": False, "dvc": False,
              "mlflow": False, "raytune": False, "tensorboard": False, "wandb": False,
              "vscode_msg": False, "openvino_msg": False,
              "datasets_dir": str(PROJECT_ROOT), "weights_dir": str(ULTRALYTICS_DIR / "weights"),
              "runs_dir": str(PROJECT_ROOT / "runs")}
    try:
        ULTRALYTICS_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # Ultralytics falls back to a private temporary dir; YOLO_OFFLINE still holds
    # Ultralytics' plots ask for Arial.ttf and download it when missing; it accepts any
    # TrueType font at that name in its config dir, so give it matplotlib's DejaVu Sans.
    font = ULTRALYTICS_DIR / "Arial.ttf"
    mpl = importlib.util.find_spec("matplotlib")
    if not font.exists() and mpl and mpl.origin:
        shutil.copy(Path(mpl.origin).parent / "mpl-data/fonts/ttf/DejaVuSans.ttf", font)

    file = ULTRALYTICS_DIR / "settings.json"
    try:
        found = json.loads(file.read_text())
    except (OSError, ValueError):
        found = {}
    found = found if isinstance(found, dict) else {}
    if any(found.get(k) != v for k, v in wanted.items()):
        tmp = file.with_name(f".settings.{os.getpid()}.json")  # atomic: stages may start side by side
        tmp.write_text(json.dumps({**found, **wanted}, indent=2))
        os.replace(tmp, file)


_offline_settings()
