"""Loading, sizing and validating Ultralytics YOLO pose models (PyTorch or ONNX files)."""
import tempfile

import stages  # noqa: F401  (Ultralytics offline before it is imported)
from stages.checks import InputError, existing_file


def load_pose_model(path):
    """A YOLO pose model from a .pt checkpoint (or .onnx export), checked to be a pose model."""
    from ultralytics import YOLO

    p = existing_file(path, "model")
    if p.suffix == ".onnx":
        return YOLO(str(p), task="pose")
    try:
        model = YOLO(str(p))
    except Exception as e:  # Ultralytics raises many kinds for a file that is not a checkpoint
        raise InputError(f"model {p}: not a readable YOLO checkpoint ({e.__class__.__name__}: {e})"[:300]) from None
    if model.task != "pose":
        raise InputError(f"model {p}: a YOLO '{model.task}' model, not a pose model")
    return model


def count_params(model) -> int:
    """Number of parameters of a YOLO wrapper's torch module."""
    return sum(p.numel() for p in model.model.parameters())


def gflops(model, imgsz: int) -> float:
    """GFLOPs (2 x MACs) of one forward pass at imgsz x imgsz, as Ultralytics reports them."""
    from ultralytics.utils.torch_utils import get_flops

    return float(get_flops(model.model, imgsz))


def validate(model, dataset_yaml, imgsz: int, batch: int, workers: int = 0, **overrides) -> dict:
    """Pose and box mAP from Ultralytics' own validator on the dataset's val split."""
    with tempfile.TemporaryDirectory() as runs:
        m = model.val(data=str(dataset_yaml), imgsz=imgsz, batch=batch, workers=workers,
                      device="cpu", plots=False, project=runs, name="val", exist_ok=True,
                      verbose=False, **overrides)
    return {"pose_map50": float(m.pose.map50), "pose_map50_95": float(m.pose.map),
            "box_map50": float(m.box.map50), "box_map50_95": float(m.box.map)}
