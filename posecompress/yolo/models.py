"""Loading, sizing and validating Ultralytics YOLO pose checkpoints (exported models: exported.py)."""

import posecompress  # noqa: F401  (Ultralytics offline before it is imported)
from posecompress.common.checks import InputError, existing_file
from posecompress.common.outputs import scratch_dir


def first_sentence(e: Exception) -> str:
    """An exception as one short clause: its type and the first sentence of its first line, without
    Ultralytics' 'ERROR' prefix and advice (which would tell a pipeline user to re-download)."""
    text = str(e).splitlines()[0] if str(e) else ""
    text = text.split(" — ")[-1].replace("ERROR ❌️", "").strip().split(". ")[0].rstrip(".")
    text += ")" * (text.count("(") - text.count(")"))
    return f"{e.__class__.__name__}: {text}"[:200]


def load_pose_model(path):
    """A YOLO pose model from a .pt checkpoint, checked to be a pose model (exported models:
    exported.load_exported, either kind: exported.load_detector)."""
    from ultralytics import YOLO

    p = existing_file(path, "model")
    if p.is_dir() or p.suffix in (".onnx", ".xml"):
        raise InputError(f"model {p}: an exported model where a PyTorch .pt checkpoint is expected")
    if p.stat().st_size == 0:
        raise InputError(f"model {p}: empty file (0 bytes), not a YOLO checkpoint")
    try:
        model = YOLO(str(p))
    except Exception as e:  # Ultralytics raises many kinds for a file that is not a checkpoint
        raise InputError(f"model {p}: not a readable YOLO checkpoint ({first_sentence(e)})") from None
    if model.task != "pose":
        raise InputError(f"model {p}: a YOLO '{model.task}' model, not a pose model")
    return model


def architecture(model) -> str:
    """The Ultralytics model YAML a YOLO wrapper was built from ('yolo11n-pose'), or 'unknown'."""
    from pathlib import Path

    yaml_file = (getattr(model.model, "yaml", None) or {}).get("yaml_file")
    return Path(yaml_file).stem if yaml_file else "unknown"


def count_params(model) -> int:
    """Number of parameters of a YOLO wrapper's torch module."""
    return sum(p.numel() for p in model.model.parameters())


def gflops(model, imgsz: int) -> float:
    """GFLOPs (2 x MACs) of one forward pass at imgsz x imgsz, as Ultralytics reports them."""
    from ultralytics.utils.torch_utils import get_flops

    return float(get_flops(model.model, imgsz))


def validate(model, dataset_yaml, imgsz: int, batch: int, workers: int = 0, **overrides) -> dict:
    """Pose and box mAP from Ultralytics' own validator on the dataset's val split."""
    with scratch_dir("val") as runs:
        m = model.val(data=str(dataset_yaml), imgsz=imgsz, batch=batch, workers=workers,
                      device="cpu", plots=False, project=runs, name="val", exist_ok=True,
                      verbose=False, **overrides)
    return {"pose_map50": float(m.pose.map50), "pose_map50_95": float(m.pose.map),
            "box_map50": float(m.box.map50), "box_map50_95": float(m.box.map)}


def check_onnx(path) -> None:
    """onnx.checker on a model file; InputError naming the file when it fails."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # checker and parser raise several kinds
        raise InputError(f"model {path}: fails the ONNX checker ({e.__class__.__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})"[:300]) from None
