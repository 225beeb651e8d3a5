"""Stage quantize: an FP32 ONNX pose model quantized to INT8, then validated in its runtime.

    python -m stages.quantize --model outputs/yolo/onnx/fast.onnx --data data/pose/pose.yaml \
        --recipe fast --out outputs/yolo/quantize/fast --metrics metrics/quantize/fast.json

Reads recipes.<recipe>.quantize, or the `quantize_baseline` section without --recipe.
The mode (posecompress/yolo/quantize_modes.py) chooses the runtime: `dynamic` and `static` write
`int8.onnx` for onnxruntime, `openvino` writes `int8_openvino_model/` (NNCF) into the --out folder.
`keep_float` leaves the head's decoding in float and `float_stem` the Conv that reads the image;
their nodes are found from the ONNX graph (see float_nodes), whatever the mode.
Writes conv_total / conv_quantized and the pose mAP of the INT8 model from Ultralytics' validator
(in the model's runtime) at the ONNX's own input shape.
"""
import argparse

from posecompress.common.checks import dataset_images, load_params, param, pose_dataset_yaml, run_stage
from posecompress.common.images import readable_images, spread
from posecompress.common.outputs import write_json
from posecompress.runtime.formats import model_bytes
from posecompress.runtime.runtimes import runtime_of
from posecompress.yolo.exported import check_pose_export, image_input, load_exported
from posecompress.yolo.models import check_onnx, validate
from posecompress.yolo.onnx_graph import KEEP_FLOAT, conv_counts
from posecompress.yolo.quantize_modes import QUANTIZE_MODES, quantize


def read_params(path, recipe=None) -> dict:
    """The recipe's quantize sub-section (or the `quantize_baseline` section), checked
    (QUANTIZE_MODES says what each mode needs)."""
    name = "quantize_baseline" if recipe is None else f"recipes.{recipe}.quantize"
    s = load_params(path, name)
    p = {"mode": param(s, "mode", str, f"{name}.mode", choices=tuple(QUANTIZE_MODES)),
         "keep_float": param(s, "keep_float", str, f"{name}.keep_float", choices=KEEP_FLOAT),
         "float_stem": param(s, "float_stem", bool, f"{name}.float_stem")}
    return {**p, **QUANTIZE_MODES[p["mode"]].params(s, name)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="FP32 ONNX model")
    ap.add_argument("--data", required=True, help="pose dataset YAML (train: calibration, val: mAP)")
    ap.add_argument("--out", required=True, help="folder to write the INT8 model into")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--recipe", help="read recipes.<recipe>.quantize (default: quantize_baseline)")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params, a.recipe)
    dataset = pose_dataset_yaml(a.data)
    check_onnx(a.model)
    check_pose_export(a.model)
    _, shape, _ = image_input(a.model)
    calib = []
    if QUANTIZE_MODES[p["mode"]].calibrates:
        calib = readable_images(spread(dataset_images(dataset, "train"), p["calibration_images"]),
                                f"calibration set ({dataset} train)")

    int8, keep = quantize(a.model, a.out, p, calib)
    total, quantized = conv_counts(a.model, int8)
    acc = validate(load_exported(int8), dataset, list(shape), batch=1)
    write_json(a.metrics, {"mode": p["mode"], "runtime": runtime_of(int8).name, "conv_total": total,
                           "conv_quantized": quantized, "float_stem": p["float_stem"],
                           "nodes_kept_float": len(keep), "calibration_images": len(calib),
                           "size_bytes": model_bytes(int8), **acc})
    print(f"{int8}: {p['mode']} INT8, {quantized} of {total} Conv quantized, {len(keep)} nodes kept float, "
          f"pose mAP50 {acc['pose_map50']:.4f}, mAP50-95 {acc['pose_map50_95']:.4f}")


if __name__ == "__main__":
    run_stage(main)
