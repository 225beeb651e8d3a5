"""Stage peer: what a user would pick instead of this pipeline, made by Ultralytics' own exporter
from the same baseline checkpoint, then validated as our variants are.

    python -m stages.peer --format openvino_int8 --model data/models/yolo_pose.pt \
        --data data/pose/pose.yaml --out outputs/yolo/peer/openvino_int8 \
        --metrics metrics/peer/openvino_int8.json

| format        | Ultralytics' one line                               | runs on                      |
|---------------|-----------------------------------------------------|------------------------------|
| onnx_int8     | `yolo export format=onnx quantize=8 data=...`       | onnxruntime: static QDQ, S8 activations and weights, per tensor, Conv/Gemm/MatMul only |
| openvino_fp32 | `yolo export format=openvino`                       | OpenVINO                     |
| openvino_int8 | `yolo export format=openvino quantize=8 data=...`   | OpenVINO: NNCF post-training INT8 |

Every export is at export_onnx.imgsz, the accuracy size, with free H and W, so the benchmark can
time it at its own size (a static Ultralytics export bakes its anchors in and cannot be
reshaped). OpenVINO models are validated at a fixed shape, as ours are written: the same FP32
baseline scored pose mAP50 85.24 with free H and W and 88.27 reshaped to 256x320 in Ultralytics'
validator, and comparing a free-shape peer with our fixed-shape model would credit us 3 points.
Calibration: peers.calibration_images train images; Ultralytics takes the first ones of the sorted
split (`fraction`), and its val split unless told `split=train`, which this stage tells it.
"""
import argparse
import shutil

from posecompress.common.checks import dataset_images, image_shape, load_params, param, pose_dataset_yaml, run_stage
from posecompress.common.outputs import atomic_path, scratch_dir, write_json
from posecompress.quiet_logs import import_nncf
from posecompress.yolo.exported import (export_metadata, exported_model, image_input, ir_xml, is_openvino,
                                        model_bytes, runtime_of, write_openvino)
from posecompress.yolo.models import check_pose_export, load_pose_model, validate

FORMATS = {  # format -> Ultralytics export arguments
    "onnx_int8": {"format": "onnx", "quantize": 8, "dynamic": True},
    "openvino_fp32": {"format": "openvino", "dynamic": True},
    "openvino_int8": {"format": "openvino", "quantize": 8, "dynamic": True},
}


def read_params(path) -> dict:
    """The peers section and export_onnx's size, opset and simplify, checked."""
    s, e = load_params(path, "peers"), load_params(path, "export_onnx")
    return {"calibration_images": param(s, "calibration_images", int, "peers.calibration_images", 2, 100000),
            "imgsz": image_shape(e, "imgsz", "export_onnx.imgsz"),
            "opset": param(e, "opset", int, "export_onnx.opset", 11, 21),
            "simplify": param(e, "simplify", bool, "export_onnx.simplify")}


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
    if not is_openvino(model) or not image_input(model)[2]:
        return model
    import openvino as ov

    ir = ov.Core().read_model(str(ir_xml(model)))
    ir.reshape([1, 3, *imgsz])
    meta = export_metadata(model)
    return write_openvino(ir, folder / model.name, {**meta, "args": {**meta.get("args", {}), "dynamic": False}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--format", required=True, choices=tuple(FORMATS))
    ap.add_argument("--model", required=True, help="the baseline YOLO pose checkpoint")
    ap.add_argument("--data", required=True, help="pose dataset YAML (train: calibration, val: mAP)")
    ap.add_argument("--out", required=True, help="folder to write the exported model into")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    dataset = pose_dataset_yaml(a.data)
    load_pose_model(a.model)
    calibration = 0
    if FORMATS[a.format].get("quantize"):
        calibration = min(p["calibration_images"], len(dataset_images(dataset, "train")))

    import ultralytics

    made = export_peer(a.model, a.format, a.out, dataset, p)
    with scratch_dir("peer-val") as tmp:
        acc = validate(load_pose_model(fixed_shape(made, p["imgsz"], tmp)), dataset, p["imgsz"], batch=1)
    write_json(a.metrics, {"format": a.format, "runtime": runtime_of(made),
                           "ultralytics_version": ultralytics.__version__,
                           "calibration_images": calibration, "calibration_split": "train" if calibration else None,
                           "size_bytes": model_bytes(made), **acc})
    print(f"{made}: Ultralytics {a.format}, pose mAP50 {acc['pose_map50']:.4f}, "
          f"mAP50-95 {acc['pose_map50_95']:.4f}")


if __name__ == "__main__":
    run_stage(main)
