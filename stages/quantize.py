"""Stage quantize: an FP32 ONNX pose model quantized to INT8 by onnxruntime, then validated.

    python -m stages.quantize --model outputs/yolo/onnx/fast.onnx --data data/pose/pose.yaml \
        --recipe fast --out outputs/yolo/quantize/fast.onnx --metrics metrics/quantize/fast.json

Reads recipes.<recipe>.quantize, or the `quantize_baseline` section without --recipe.
Modes: `dynamic` (the study's: weights quantized ahead, activation scales computed at run time,
Conv -> ConvInteger) and `static` (QDQ, activation ranges calibrated on train images
prepared as the validator prepares them). `keep_float` leaves the head's decoding in float and
`float_stem` the Conv that reads the image; their nodes are found from the graph (see float_nodes).
Writes conv_total / conv_quantized and the
pose mAP of the INT8 file from Ultralytics' validator at the ONNX's own input shape.
"""
import argparse
from pathlib import Path

from stages.calibration import ImageCalibrationReader
from stages.checks import dataset_images, load_params, param, pose_dataset_yaml, run_stage
from stages.export_onnx import check_onnx
from stages.images import onnx_input_shape, readable_images, spread
from stages.onnx_graph import KEEP_FLOAT, conv_counts, float_nodes
from stages.outputs import atomic_path, write_json
from stages.yolo_models import check_pose_onnx, load_pose_model, validate


METHODS = ("MinMax", "Entropy", "Percentile", "Distribution")


def read_params(path, recipe=None) -> dict:
    """The recipe's quantize sub-section (or the `quantize_baseline` section), checked."""
    name = "quantize_baseline" if recipe is None else f"recipes.{recipe}.quantize"
    s = load_params(path, name)
    p = {"mode": param(s, "mode", str, f"{name}.mode", choices=("static", "dynamic")),
         "weight_type": param(s, "weight_type", str, f"{name}.weight_type", choices=("QInt8", "QUInt8")),
         "per_channel": param(s, "per_channel", bool, f"{name}.per_channel"),
         "keep_float": param(s, "keep_float", str, f"{name}.keep_float", choices=KEEP_FLOAT),
         "float_stem": param(s, "float_stem", bool, f"{name}.float_stem")}
    if p["mode"] == "static":
        p.update(activation_type=param(s, "activation_type", str, f"{name}.activation_type",
                                       choices=("QInt8", "QUInt8")),
                 calibrate_method=param(s, "calibrate_method", str, f"{name}.calibrate_method", choices=METHODS),
                 calibration_images=param(s, "calibration_images", int, f"{name}.calibration_images", 1, 100000))
    return p


def quantize(src, dst, p: dict, calibration_files=()) -> list:
    """Write the INT8 model of `src` to `dst`; return the names of the nodes kept in float."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    model = onnx.load(str(src))
    keep = float_nodes(model.graph, p["keep_float"], p["float_stem"])
    with atomic_path(dst) as tmp:
        if p["mode"] == "dynamic":
            quantize_dynamic(model, tmp, weight_type=QuantType[p["weight_type"]], per_channel=p["per_channel"],
                             nodes_to_exclude=keep)
        else:
            name, shape = onnx_input_shape(src)
            quantize_static(model, tmp, ImageCalibrationReader(calibration_files, name, shape),
                            quant_format=QuantFormat.QDQ, per_channel=p["per_channel"],
                            activation_type=QuantType[p["activation_type"]],
                            weight_type=QuantType[p["weight_type"]], nodes_to_exclude=keep,
                            calibrate_method=CalibrationMethod[p["calibrate_method"]],
                            extra_options=calibration_chunks(p["calibrate_method"], len(calibration_files)))
        restore_metadata(tmp, model)
        check_onnx(tmp)
    return keep


def calibration_chunks(method: str, n: int) -> dict:
    """onnxruntime's option to calibrate MinMax in chunks of at most 16 images.

    Its calibrator otherwise holds every intermediate tensor of every image at once (about
    55 MB per image for yolov8n-pose at 480x640); chunk ranges are merged, so the result is the
    same. The chunk size must divide n.
    """
    if method != "MinMax":
        return {}
    return {"CalibStridedMinMax": max(d for d in range(1, 17) if n % d == 0)}


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
    ap.add_argument("--out", required=True, help="INT8 ONNX file to write")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--recipe", help="read recipes.<recipe>.quantize (default: quantize_baseline)")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params, a.recipe)
    dataset = pose_dataset_yaml(a.data)
    check_onnx(a.model)
    check_pose_onnx(a.model)
    _, shape = onnx_input_shape(a.model)
    calib = []
    if p["mode"] == "static":
        calib = readable_images(spread(dataset_images(dataset, "train"), p["calibration_images"]),
                                f"calibration set ({dataset} train)")

    keep = quantize(a.model, a.out, p, calib)
    total, quantized = conv_counts(a.model, a.out)
    acc = validate(load_pose_model(a.out), dataset, list(shape), batch=1)
    write_json(a.metrics, {"mode": p["mode"], "conv_total": total, "conv_quantized": quantized,
                           "float_stem": p["float_stem"],
                           "nodes_kept_float": len(keep), "calibration_images": len(calib),
                           "size_bytes": Path(a.out).stat().st_size, **acc})
    print(f"{a.out}: {p['mode']} INT8, {quantized} of {total} Conv quantized, {len(keep)} nodes kept float, "
          f"pose mAP50 {acc['pose_map50']:.4f}, mAP50-95 {acc['pose_map50_95']:.4f}")


if __name__ == "__main__":
    run_stage(main)
