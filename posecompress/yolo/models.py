"""Loading, sizing and validating Ultralytics YOLO pose models (checkpoints and exports)."""

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
    """A YOLO pose model from a .pt checkpoint or an export (.onnx file, OpenVINO IR folder, or a
    stage folder holding one: exported.exported_model), checked to be a pose model."""
    from ultralytics import YOLO

    from posecompress.yolo.exported import exported_model

    p = existing_file(path, "model")
    if p.is_dir() or p.suffix == ".onnx":
        p = exported_model(p)
        check_pose_export(p)
        return YOLO(str(p), task="pose")
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


def check_pose_export(path, kpt_shape=(17, 3)) -> None:
    """InputError unless an exported model (ONNX file or OpenVINO IR folder) is a YOLO pose export,
    as load_pose_model checks a checkpoint: Ultralytics' metadata says task pose with `kpt_shape`,
    and the first output has a pose head's layout, (1, 4 + classes + keypoint values, anchors), or
    (1, max_det, 6 + keypoint values) for an end-to-end head (YOLO26; metadata end2end). Any other
    model would run through the pose stages and score zeros."""
    from posecompress.yolo.exported import export_metadata, io_dims

    p = existing_file(path, "model")
    meta = export_metadata(p)
    if meta.get("task") != "pose":
        raise InputError(f"model {p}: a YOLO '{meta['task']}' model, not a pose model" if "task" in meta
                         else f"model {p}: no Ultralytics metadata (task), not a YOLO pose export")
    try:
        kpt, classes = list(meta["kpt_shape"]), len(meta["names"])
    except (KeyError, TypeError):
        raise InputError(f"model {p}: no readable kpt_shape and names in its Ultralytics metadata") from None
    if kpt != list(kpt_shape):
        raise InputError(f"model {p}: kpt_shape is {kpt}, expected {list(kpt_shape)}")
    values = kpt_shape[0] * kpt_shape[1]
    _, _, out, dims = io_dims(p)
    if meta.get("end2end") in (True, "True"):
        fixed, want = {2: 6 + values}, f"[1, max_det, {6 + values}]"
    else:
        fixed, want = {1: 4 + classes + values}, f"[1, {4 + classes + values}, anchors]"
    batch_of_one = len(dims) == 3 and dims[0] in (1, "?")  # "?": a dynamic batch
    if not (batch_of_one and all(dims[i] == n for i, n in fixed.items())):
        raise InputError(f"model {p}: output {out} is {dims}, not a pose head's {want}")


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
