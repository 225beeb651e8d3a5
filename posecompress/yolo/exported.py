"""Exported YOLO pose models, in whichever runtime's format (runtime/runtimes.py).

A stage output folder holding exactly one model (quantize, peer) stands for that model, so
dvc.yaml names one path whatever the runtime.
"""
from pathlib import Path

from posecompress.common.checks import InputError, existing_file
from posecompress.runtime.formats import OPENVINO_SUFFIX, is_ir
from posecompress.runtime.runtimes import runtime_of
from posecompress.yolo.models import load_pose_model


def exported_model(path, what: str = "model") -> Path:
    """The model a path stands for: a file, an IR folder, or the one of them inside a stage's folder."""
    p = existing_file(path, what)
    if p.is_file() or is_ir(p):
        return p
    found = sorted(p.glob("*.onnx")) + sorted(d for d in p.glob(f"*{OPENVINO_SUFFIX}") if d.is_dir())
    if len(found) != 1:
        raise InputError(f"{what} {p}: expected one .onnx file or *{OPENVINO_SUFFIX} folder in it, "
                         f"found {len(found)}")
    return found[0]


def image_input(path) -> tuple:
    """(name, (h, w), dynamic) of an exported pose model's single 1x3xHxW image input. (h, w) is
    its static shape or, when height and width are free, the shape it was exported at (Ultralytics'
    `imgsz` metadata), the shape its accuracy is measured at."""
    runtime = runtime_of(path)
    name, dims, _, _ = runtime.io_dims(path)
    if len(dims) != 4 or dims[1] != 3:
        raise InputError(f"model {path}: input {name} is not a 1x3xHxW image ({dims})")
    if "?" not in dims[2:]:
        return name, (dims[2], dims[3]), False
    try:
        h, w = runtime.metadata(path)["imgsz"]
    except (KeyError, ValueError, TypeError):
        raise InputError(f"model {path}: free input shape and no [h, w] `imgsz` metadata") from None
    return name, (int(h), int(w)), True


def load_exported(path):
    """A YOLO pose model (Ultralytics' AutoBackend) of an exported model: a file, an IR folder or a
    stage folder holding one (exported_model), checked to be a pose export (check_pose_export)."""
    from ultralytics import YOLO

    p = exported_model(path)
    check_pose_export(p)
    return YOLO(str(p), task="pose")


def load_detector(path):
    """A YOLO pose model of a .pt checkpoint (models.load_pose_model) or of an export (load_exported)."""
    p = existing_file(path, "model")
    return load_exported(p) if p.is_dir() or p.suffix in (".onnx", ".xml") else load_pose_model(p)


def check_pose_export(path, kpt_shape=(17, 3)) -> None:
    """InputError unless an exported model (ONNX file or OpenVINO IR folder) is a YOLO pose export,
    as load_pose_model checks a checkpoint: Ultralytics' metadata says task pose with `kpt_shape`,
    and the first output has a pose head's layout, (1, 4 + classes + keypoint values, anchors), or
    (1, max_det, 6 + keypoint values) for an end-to-end head (YOLO26; metadata end2end). Any other
    model would run through the pose stages and score zeros."""
    p = existing_file(path, "model")
    runtime = runtime_of(p)
    meta = runtime.metadata(p)
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
    _, _, out, dims = runtime.io_dims(p)
    if meta.get("end2end") in (True, "True"):
        fixed, want = {2: 6 + values}, f"[1, max_det, {6 + values}]"
    else:
        fixed, want = {1: 4 + classes + values}, f"[1, {4 + classes + values}, anchors]"
    batch_of_one = len(dims) == 3 and dims[0] in (1, "?")  # "?": a dynamic batch
    if not (batch_of_one and all(dims[i] == n for i, n in fixed.items())):
        raise InputError(f"model {p}: output {out} is {dims}, not a pose head's {want}")
