"""Stage peer: what a user would pick instead of this pipeline, made by Ultralytics' own exporter
from the same baseline checkpoint, then validated as our variants are.

    python -m stages.peer --format openvino_int8 --model data/models/yolo_pose.pt \
        --data data/pose/pose.yaml --out outputs/yolo/peer/openvino_int8 \
        --metrics metrics/peer/openvino_int8.json

The formats and what each runs on: posecompress/yolo/peers.py (FORMATS).

Every export is at export_onnx.imgsz, the accuracy size, with free H and W, so the benchmark can
time it at its own size (a static Ultralytics export bakes its anchors in and cannot be
reshaped). OpenVINO models are validated at a fixed shape, as ours are written: the same FP32
baseline scored pose mAP50 85.24 with free H and W and 88.27 reshaped to 256x320 in Ultralytics'
validator, and comparing a free-shape peer with our fixed-shape model would credit us 3 points.
Calibration: peers.calibration_images train images; Ultralytics takes the first ones of the sorted
split (`fraction`), and its val split unless told `split=train`, which this stage tells it.
"""
import argparse

from posecompress.common.checks import dataset_images, image_shape, load_params, param, pose_dataset_yaml, run_stage
from posecompress.common.outputs import scratch_dir, write_json
from posecompress.runtime.formats import model_bytes
from posecompress.runtime.runtimes import runtime_of
from posecompress.yolo.exported import load_exported
from posecompress.yolo.models import load_pose_model, validate
from posecompress.yolo.peers import FORMATS, export_peer, fixed_shape


def read_params(path) -> dict:
    """The peers section and export_onnx's size, opset and simplify, checked."""
    s, e = load_params(path, "peers"), load_params(path, "export_onnx")
    return {"calibration_images": param(s, "calibration_images", int, "peers.calibration_images", 2, 100000),
            "imgsz": image_shape(e, "imgsz", "export_onnx.imgsz"),
            "opset": param(e, "opset", int, "export_onnx.opset", 11, 21),
            "simplify": param(e, "simplify", bool, "export_onnx.simplify")}


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
        acc = validate(load_exported(fixed_shape(made, p["imgsz"], tmp)), dataset, p["imgsz"], batch=1)
    write_json(a.metrics, {"format": a.format, "runtime": runtime_of(made).name,
                           "ultralytics_version": ultralytics.__version__,
                           "calibration_images": calibration, "calibration_split": "train" if calibration else None,
                           "size_bytes": model_bytes(made), **acc})
    print(f"{made}: Ultralytics {a.format}, pose mAP50 {acc['pose_map50']:.4f}, "
          f"mAP50-95 {acc['pose_map50_95']:.4f}")


if __name__ == "__main__":
    run_stage(main)
