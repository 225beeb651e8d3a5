"""Ultralytics' own exports of a baseline: what a user would pick instead of this pipeline.

| format        | Ultralytics' one line                               | runs on                      |
|---------------|-----------------------------------------------------|------------------------------|
| onnx_int8     | `yolo export format=onnx quantize=8 data=...`       | onnxruntime: static QDQ, S8 activations and weights, per tensor, Conv/Gemm/MatMul only |
| openvino_fp32 | `yolo export format=openvino`                       | OpenVINO                     |
| openvino_int8 | `yolo export format=openvino quantize=8 data=...`   | OpenVINO: NNCF post-training INT8 |
"""
import shutil

from posecompress.common.outputs import atomic_path, scratch_dir
from posecompress.quiet_logs import import_nncf
from posecompress.runtime.formats import ir_metadata, ir_xml, write_openvino
from posecompress.runtime.runtimes import OPENVINO, runtime_of
from posecompress.yolo.exported import check_pose_export, exported_model, image_input
from posecompress.yolo.models import load_pose_model

FORMATS = {  # format -> Ultralytics export arguments
    "onnx_int8": {"format": "onnx", "quantize": 8, "dynamic": True},
    "openvino_fp32": {"format": "openvino", "dynamic": True},
    "openvino_int8": {"format": "openvino", "quantize": 8, "dynamic": True},
}



def export_peer(model_path, fmt: str, out, dataset, p: dict):
    """Ultralytics' export of a copy of the checkpoint in `fmt`, moved into the folder `out`; returns
    the exported model's path there. The exporter writes beside its source, so it works on a copy."""
    args = dict(FORMATS[fmt], imgsz=p["imgsz"], batch=1, nms=False, device="cpu", verbose=False)
    if args["format"] == "onnx":
        args.update(opset=p["opset"], simplify=p["simplify"])
    if args.get("quantize"):  # data= always: without it the exporter would fetch its default dataset
        args.update(data=str(dataset), split="train", fraction=p["calibration_images"])
    if args["format"] == "openvino" and args.get("quantize"):
        import_nncf()  # the exporter quantizes with NNCF, whose log level holds only once it is imported
    import torch

    # Ultralytics' calibration loader shuffles with a seed drawn from torch's initial seed, which
    # is random per process: two exports of one checkpoint scored pose mAP50 85.26 and 84.51 on the
    # demo. A fixed seed makes the peer repeat, as every other stage does.
    torch.manual_seed(0)
    with scratch_dir("peer") as tmp:
        src = tmp / "model.pt"
        shutil.copy(model_path, src)
        made = load_pose_model(src).export(**args)
        with atomic_path(out) as tmp_out:
            tmp_out.mkdir()
            shutil.move(str(made), tmp_out)
            check_pose_export(exported_model(tmp_out))
    return exported_model(out)


def fixed_shape(model, imgsz, folder):
    """The model as the validator should run it: an OpenVINO IR with free H and W reshaped to imgsz
    and written into `folder` (its metadata saying so); any other model as it is."""
    if runtime_of(model) is not OPENVINO or not image_input(model)[2]:
        return model
    import openvino as ov

    ir = ov.Core().read_model(str(ir_xml(model)))
    ir.reshape([1, 3, *imgsz])
    meta = ir_metadata(model)
    return write_openvino(ir, folder / model.name, {**meta, "args": {**meta.get("args", {}), "dynamic": False}})
