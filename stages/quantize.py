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
from pathlib import Path

from posecompress.common.checks import dataset_images, load_params, param, pose_dataset_yaml, run_stage
from posecompress.common.images import onnx_input_shape, readable_images, spread
from posecompress.common.outputs import atomic_path, write_json
from posecompress.yolo.exported import model_bytes, runtime_of
from posecompress.yolo.models import check_onnx, check_pose_export, load_pose_model, validate
from posecompress.yolo.onnx_graph import KEEP_FLOAT, conv_counts, float_nodes
from posecompress.yolo.quantize_modes import QUANTIZE_MODES


def read_params(path, recipe=None) -> dict:
    """The recipe's quantize sub-section (or the `quantize_baseline` section), checked
    (QUANTIZE_MODES says what each mode needs)."""
    name = "quantize_baseline" if recipe is None else f"recipes.{recipe}.quantize"
    s = load_params(path, name)
    p = {"mode": param(s, "mode", str, f"{name}.mode", choices=tuple(QUANTIZE_MODES)),
         "keep_float": param(s, "keep_float", str, f"{name}.keep_float", choices=KEEP_FLOAT),
         "float_stem": param(s, "float_stem", bool, f"{name}.float_stem")}
    return {**p, **QUANTIZE_MODES[p["mode"]].params(s, name)}


def quantize(src, out, p: dict, calibration_files=()) -> tuple:
    """Write the INT8 model of `src` into the folder `out`; return its path and the names of the
    ONNX nodes kept in float."""
    import onnx

    model = onnx.load(str(src))
    keep = float_nodes(model.graph, p["keep_float"], p["float_stem"])
    mode = QUANTIZE_MODES[p["mode"]]
    with atomic_path(out) as tmp:
        tmp.mkdir()
        mode.write(model, src, tmp / mode.output, p, calibration_files, keep)
        if mode.runtime == "onnxruntime":
            restore_metadata(tmp / mode.output, model)
            check_onnx(tmp / mode.output)
    return Path(out) / mode.output, keep


def restore_metadata(path, source) -> None:
    """Copy the exporter's metadata (task, imgsz, names, kpt_shape) onto the quantized file when lost;
    Ultralytics' AutoBackend reads it to run the ONNX file as a pose model."""
    import onnx

    q = onnx.load(str(path))
    have = {m.key for m in q.metadata_props}
    missing = [m for m in source.metadata_props if m.key not in have]
    if missing:
        q.metadata_props.extend(missing)
        onnx.save(q, str(path))


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
    _, shape = onnx_input_shape(a.model)
    calib = []
    if QUANTIZE_MODES[p["mode"]].calibrates:
        calib = readable_images(spread(dataset_images(dataset, "train"), p["calibration_images"]),
                                f"calibration set ({dataset} train)")

    int8, keep = quantize(a.model, a.out, p, calib)
    total, quantized = conv_counts(a.model, int8)
    acc = validate(load_pose_model(int8), dataset, list(shape), batch=1)
    write_json(a.metrics, {"mode": p["mode"], "runtime": runtime_of(int8), "conv_total": total,
                           "conv_quantized": quantized, "float_stem": p["float_stem"],
                           "nodes_kept_float": len(keep), "calibration_images": len(calib),
                           "size_bytes": model_bytes(int8), **acc})
    print(f"{int8}: {p['mode']} INT8, {quantized} of {total} Conv quantized, {len(keep)} nodes kept float, "
          f"pose mAP50 {acc['pose_map50']:.4f}, mAP50-95 {acc['pose_map50_95']:.4f}")


if __name__ == "__main__":
    run_stage(main)
