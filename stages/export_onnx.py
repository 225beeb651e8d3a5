"""Stage export_onnx: a YOLO pose checkpoint exported to ONNX by Ultralytics' exporter, then checked.

    python -m stages.export_onnx --model data/models/yolo_pose.pt --data data/pose/pose.yaml \
        --out outputs/yolo/onnx/baseline.onnx --metrics metrics/export_onnx/baseline.json

The export takes 1x3xHxW input of export_onnx.imgsz, the size the quantize stage calibrates and
validates at; with export_onnx.dynamic H and W are free, so the benchmark can time the same file
at another size (the study's 480x640). Checks: onnx.checker passes, and the
ONNX output matches the PyTorch model's on real val images within export_onnx.tolerance
(`max_abs_diff`, in output units: pixels for boxes and keypoints). Also writes the pose mAP of
the ONNX file itself, from Ultralytics' validator at the export shape.
"""
import argparse
from pathlib import Path

from posecompress.common.checks import (dataset_images, image_shape, load_params, param, pose_dataset_yaml,
                                        run_stage)
from posecompress.common.images import readable_images, spread
from posecompress.common.outputs import write_json
from posecompress.yolo.exported import load_exported
from posecompress.yolo.models import load_pose_model, validate
from posecompress.yolo.onnx_export import export, max_abs_diff


def read_params(path) -> dict:
    """The export_onnx section of params.yaml, checked; imgsz becomes [h, w]."""
    s = load_params(path, "export_onnx")
    return {"imgsz": image_shape(s, "imgsz", "export_onnx.imgsz"),
            "opset": param(s, "opset", int, "export_onnx.opset", 11, 21),
            "simplify": param(s, "simplify", bool, "export_onnx.simplify"),
            "dynamic": param(s, "dynamic", bool, "export_onnx.dynamic"),
            "tolerance": param(s, "tolerance", float, "export_onnx.tolerance", 0.0, 1000.0),
            "check_images": param(s, "check_images", int, "export_onnx.check_images", 1, 10000)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="YOLO pose checkpoint (.pt)")
    ap.add_argument("--data", required=True, help="pose dataset YAML (val images for the checks)")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    dataset = pose_dataset_yaml(a.data)
    model = load_pose_model(a.model)  # a pose checkpoint, checked before any work
    images = readable_images(spread(dataset_images(dataset, "val"), p["check_images"]), f"dataset {dataset} val")

    def within_tolerance(path) -> tuple:
        diff, compared = max_abs_diff(model, path, images, p["imgsz"])
        if not compared:
            raise SystemExit(f"error: {a.out}: the output check compared no value; nothing written")
        if diff > p["tolerance"]:
            raise SystemExit(f"error: {a.out}: ONNX output differs from PyTorch's by {diff:.4g} "
                             f"> export_onnx.tolerance {p['tolerance']}; nothing written")
        return diff, compared

    diff, compared = export(a.model, a.out, p["imgsz"], p["opset"], p["simplify"], p["dynamic"], within_tolerance)
    acc = validate(load_exported(a.out), dataset, p["imgsz"], batch=1)
    write_json(a.metrics, {"imgsz": p["imgsz"], "dynamic": p["dynamic"], "opset": p["opset"],
                           "max_abs_diff": diff, "tolerance": p["tolerance"], "check_images": len(images),
                           "values_compared": compared,
                           "size_bytes": Path(a.out).stat().st_size, **acc})
    print(f"{a.out}: checker ok, max_abs_diff {diff:.3g} <= {p['tolerance']} over {compared:,} values of "
          f"{len(images)} images, "
          f"pose mAP50 {acc['pose_map50']:.4f}, mAP50-95 {acc['pose_map50_95']:.4f} at {p['imgsz']}")


if __name__ == "__main__":
    run_stage(main)
