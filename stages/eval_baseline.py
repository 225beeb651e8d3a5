"""Stage eval_baseline: the YOLO pose baseline measured by Ultralytics' own validator.

    python -m stages.eval_baseline --model data/models/yolo_pose.pt \
        --data data/pose/pose.yaml --metrics metrics/eval_baseline.json

Writes the architecture (the Ultralytics model YAML it was built from), pose and box mAP50 /
mAP50-95 on the val split, the parameter count and GFLOPs.
"""
import argparse

from posecompress.common.checks import load_params, param, pose_dataset_yaml, run_stage
from posecompress.common.outputs import write_json
from posecompress.yolo.models import architecture, count_params, gflops, load_pose_model, validate


def read_params(path) -> dict:
    """The eval_baseline section of params.yaml, checked."""
    s = load_params(path, "eval_baseline")
    return {"imgsz": param(s, "imgsz", int, "eval_baseline.imgsz", 32, 4096),
            "batch": param(s, "batch", int, "eval_baseline.batch", 1, 1024)}


def evaluate(model_path, dataset_yaml, imgsz: int, batch: int) -> dict:
    """Accuracy and size of a YOLO pose checkpoint."""
    model = load_pose_model(model_path)
    metrics = validate(model, dataset_yaml, imgsz, batch)
    return {"architecture": architecture(model), **metrics, "params": count_params(model),
            "gflops": gflops(model, imgsz)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="pose dataset YAML")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    dataset = pose_dataset_yaml(a.data)
    metrics = evaluate(a.model, dataset, p["imgsz"], p["batch"])
    write_json(a.metrics, metrics)
    print(f"baseline {metrics['architecture']}: pose mAP50 {metrics['pose_map50']:.4f}, "
          f"mAP50-95 {metrics['pose_map50_95']:.4f}, "
          f"{metrics['params']:,} params, {metrics['gflops']:.2f} GFLOPs -> {a.metrics}")


if __name__ == "__main__":
    run_stage(main)
