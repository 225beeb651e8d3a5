"""The library the pipeline's stages (stages/) and tools (tools/) share.

    common/      checks of inputs and parameters, atomic outputs, the pose dataset and images
    yolo/        the YOLO track: loading and sizing models, pruning, training arguments, INT8
    classifier/  the classifier track: TF -> ONNX -> PyTorch, pruning, the activity data
    runtime/     running and timing models: onnxruntime and OpenVINO sessions, round-robin timing, the pair
    report/      the report's sections and figures
    review/      the pull request's verdict

Importing this package makes Ultralytics work offline for every stage, test and tool of the
project: nothing is downloaded, installed or reported at run time. This must run before
`ultralytics` is first imported, because Ultralytics reads these variables at import.
"""
import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_CONFIG_DIR = PROJECT_ROOT / ".ultralytics"

os.environ.setdefault("YOLO_CONFIG_DIR", str(_CONFIG_DIR))  # settings live in the project, not ~/.config
os.environ["YOLO_OFFLINE"] = "true"  # no hub, asset or GitHub look-ups
os.environ["YOLO_AUTOINSTALL"] = "false"  # never pip-install a missing requirement at run time
os.environ.setdefault("YOLO_VERBOSE", "false")
# NNCF sends usage telemetry unless NNCF_CI is set; OpenVINO's model converter (Ultralytics'
# OpenVINO export) asks for consent and writes ~/intel/ unless CI is set: neither may reach out.
os.environ.setdefault("NNCF_CI", "1")
os.environ.setdefault("CI", "true")


def _offline_settings() -> None:
    """Pin the Ultralytics settings the project relies on, whatever a machine has left behind."""
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    # Ultralytics' plots ask for Arial.ttf and download it when missing; it accepts any
    # TrueType font at that name in its config dir, so give it matplotlib's DejaVu Sans.
    font = USER_CONFIG_DIR / "Arial.ttf"
    if not font.exists():
        import matplotlib

        shutil.copy(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf", font)

    wanted = {"sync": False, "clearml": False, "comet": False, "dvc": False, "mlflow": False,
              "raytune": False, "tensorboard": False, "wandb": False, "hub": False,
              "vscode_msg": False, "openvino_msg": False,
              "datasets_dir": str(PROJECT_ROOT), "weights_dir": str(USER_CONFIG_DIR / "weights"),
              "runs_dir": str(PROJECT_ROOT / "runs")}
    wanted = {k: v for k, v in wanted.items() if k in SETTINGS}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)


_offline_settings()
