"""Ultralytics' ONNX export of a pose checkpoint, made byte-stable, and its outputs compared
with the PyTorch model's."""
import shutil
from pathlib import Path

from posecompress.common.images import validator_tensor
from posecompress.common.outputs import atomic_path, scratch_dir
from posecompress.runtime.formats import onnx_metadata
from posecompress.runtime.sessions import onnx_runner
from posecompress.yolo.checkpoint import read_checkpoint
from posecompress.yolo.models import check_onnx, load_pose_model


def export(model_path, out, imgsz, opset: int, simplify: bool, dynamic: bool, accept=None):
    """Ultralytics' ONNX export of a checkpoint, written to `out`; returns what `accept(file)` returns.

    The exporter writes beside its source file, so it works on a copy in a temporary folder:
    nothing appears next to the checkpoint (another stage's output). `accept` checks the written file
    before it is moved into place, so a file it rejects (by raising) never appears at `out`.
    """
    with scratch_dir("export") as tmp:
        src = tmp / "model.pt"
        shutil.copy(model_path, src)
        model = load_pose_model(src)
        made = model.export(format="onnx", imgsz=imgsz, opset=opset, simplify=simplify, dynamic=dynamic,
                            batch=1, half=False, nms=False, device="cpu", verbose=False)
        with atomic_path(out) as tmp_out:
            same_bytes_for_same_model(made, tmp_out, read_checkpoint(model_path).get("date"))
            check_onnx(tmp_out)
            return accept(tmp_out) if accept else None


def same_bytes_for_same_model(src, dst, date) -> None:
    """Write the exported file to `dst` without what differs between two exports of one checkpoint:
    the export's date (the checkpoint's instead) and the intermediate tensors' shape annotations
    (graph.value_info), which onnxslim writes in a different number each process (966 or 1,403 for
    the demo baseline, 0.2 MB apart). Neither is part of the model; onnxruntime and its quantizer
    infer the shapes again. Nor is where a project lay: the description names the dataset the
    checkpoint was trained on, by the absolute path of wherever it was trained (the bundled
    checkpoints' name another machine's folder), so only the file's name is kept. A changed file
    then means a changed model."""
    import onnx

    model = onnx.load(str(src))
    del model.graph.value_info[:]
    for m in model.metadata_props:
        if m.key == "description":
            head, sep, data = m.value.partition(" trained on ")
            m.value = f"{head}{sep}{Path(data).name}" if sep else m.value
    stamped = [m for m in model.metadata_props if m.key == "date"]
    for m in stamped:
        if date:
            m.value = str(date)
        else:  # a checkpoint without a date (the pipeline's fine-tuned ones): none in the file either
            model.metadata_props.remove(m)
    onnx.save(model, str(dst))


# End-to-end heads (YOLO26) output (N, max_det, 6 + keypoints) rows ordered by TopK score, and a
# last-digit difference can swap two near-equal scores: each row is compared to its nearest match
# among every row on the other side. Compared: the rows scoring at least END2END_SCORE_FLOOR, and
# at least the END2END_TOP_ROWS best whatever their score, so a weak model's check compares
# something (an untrained one scores nothing above the floor).
END2END_SCORE_FLOOR = 0.05
END2END_TOP_ROWS = 10


def output_diff(ref, got, end2end: bool) -> tuple:
    """(largest |PyTorch - ONNX|, values compared) over corresponding outputs: element by element, or
    for an end-to-end head's detection rows, each compared row against its closest row on the other side."""
    import numpy as np

    if got.shape != ref.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape}")
    if not end2end:
        return float(np.abs(got - ref).max(initial=0.0)), int(ref.size)
    worst, compared = 0.0, 0
    for a, b in zip(ref, got):  # per image: (max_det, 6 + nk) rows, score in column 4
        for x, y in ((a, b), (b, a)):
            top = np.argsort(-x[:, 4], kind="stable")
            rows = x[top[:max(END2END_TOP_ROWS, int((x[:, 4] >= END2END_SCORE_FLOOR).sum()))]]
            if len(rows):
                worst = max(worst, float(np.abs(rows[:, None, :] - y[None]).max(-1).min(-1).max()))
                compared += rows.size
    return worst, compared


def max_abs_diff(model, onnx_path, images, imgsz) -> tuple:
    """(largest absolute difference, values compared) between a loaded YOLO model's outputs and the
    ONNX file's over the images (output_diff). The model is set to the head the file was exported
    with (end-to-end or not, from its metadata) and fused in place, as the exporter does."""
    import torch

    end2end = onnx_metadata(onnx_path).get("end2end") is True
    net = model.model.float().eval()
    if hasattr(net, "end2end"):
        net.end2end = end2end
    net = net.fuse()
    run = onnx_runner(onnx_path)
    worst, compared = 0.0, 0
    for f in images:
        x = validator_tensor(f, imgsz)
        with torch.inference_mode():
            ref = net(torch.from_numpy(x))
        ref = (ref[0] if isinstance(ref, (list, tuple)) else ref).numpy()
        diff, n = output_diff(ref, run(x)[0], end2end)
        worst, compared = max(worst, diff), compared + n
    return worst, compared
