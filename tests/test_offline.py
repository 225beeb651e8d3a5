"""Ultralytics is kept offline by the project itself, whatever a machine's settings file says."""
import os


def test_ultralytics_settings_are_offline():
    import posecompress
    from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR
    from ultralytics.utils.checks import check_font

    assert os.environ["YOLO_OFFLINE"] == "true" and os.environ["YOLO_AUTOINSTALL"] == "false"
    assert not ONLINE
    assert SETTINGS["sync"] is False
    assert not any(SETTINGS[k] for k in ("clearml", "comet", "dvc", "mlflow", "wandb"))
    assert SETTINGS["datasets_dir"] == str(posecompress.PROJECT_ROOT)
    assert check_font("Arial.ttf") == USER_CONFIG_DIR / "Arial.ttf"  # a local file, no download


def test_importing_the_package_imports_no_framework():
    """Tools that never run a model (the verdict, the frontier) start without torch or Ultralytics."""
    import subprocess
    import sys

    code = ("import sys, posecompress, tools.verdict, tools.frontier, tools.exp_plot, posecompress.report.targets; "
            "print(sorted(m for m in ('torch', 'ultralytics', 'matplotlib', 'tensorflow', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.join(os.path.dirname(__file__), ".."))
    assert out.stdout.strip() == "[]", out.stdout


def test_dvc_config_switches_off_analytics_and_update_check():
    from configparser import ConfigParser

    cfg = ConfigParser()
    cfg.read(os.path.join(os.path.dirname(__file__), "..", ".dvc", "config"))
    assert cfg["core"]["analytics"] == "false" and cfg["core"]["check_update"] == "false"
    assert cfg["core"]["remote"] == "demo"
    assert cfg['\'remote "demo"\'']["url"] == "../demo-remote"
