"""The YOLO track's INT8 modes, one row each: what a `quantize` section must say for the mode,
whether it calibrates on train images, and how it writes the INT8 file.

A new mode (another runtime's post-training quantization) is a new row of QUANTIZE_MODES; the
quantize stage reads this table only. The nodes kept in float are chosen from the graph before any
mode runs (onnx_graph.float_nodes), so every mode keeps the same ones.
"""
from typing import Callable, NamedTuple

from posecompress.common.checks import param
from posecompress.common.images import onnx_input_shape
from posecompress.yolo.calibration import ImageCalibrationReader

CALIBRATE_METHODS = ("MinMax", "Entropy", "Percentile", "Distribution")
TYPES = ("QInt8", "QUInt8")


class QuantizeMode(NamedTuple):
    params: Callable     # (section, dotted name) -> the mode's own parameters, checked
    calibrates: bool     # reads `calibration_images` train images
    write: Callable      # (onnx model, source path, destination, params, calibration files, float nodes)


def _dynamic(model, src, dst, p: dict, files, keep: list) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(model, dst, weight_type=QuantType[p["weight_type"]], per_channel=p["per_channel"],
                     nodes_to_exclude=keep)


def _static_params(s: dict, n: str) -> dict:
    return {"activation_type": param(s, "activation_type", str, f"{n}.activation_type", choices=TYPES),
            "calibrate_method": param(s, "calibrate_method", str, f"{n}.calibrate_method",
                                      choices=CALIBRATE_METHODS),
            "calibration_images": param(s, "calibration_images", int, f"{n}.calibration_images", 1, 100000)}


def calibration_chunks(method: str, n: int) -> dict:
    """onnxruntime's option to calibrate MinMax in chunks of at most 16 images.

    Its calibrator otherwise holds every intermediate tensor of every image at once (about
    55 MB per image for yolov8n-pose at 480x640); chunk ranges are merged, so the result is the
    same. The chunk size must divide n.
    """
    if method != "MinMax":
        return {}
    return {"CalibStridedMinMax": max(d for d in range(1, 17) if n % d == 0)}


def _static(model, src, dst, p: dict, files, keep: list) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    name, shape = onnx_input_shape(src)
    quantize_static(model, dst, ImageCalibrationReader(files, name, shape),
                    quant_format=QuantFormat.QDQ, per_channel=p["per_channel"],
                    activation_type=QuantType[p["activation_type"]],
                    weight_type=QuantType[p["weight_type"]], nodes_to_exclude=keep,
                    calibrate_method=CalibrationMethod[p["calibrate_method"]],
                    extra_options=calibration_chunks(p["calibrate_method"], len(files)))


QUANTIZE_MODES = {
    # the study's: weights quantized ahead, activation scales computed at run time (ConvInteger)
    "dynamic": QuantizeMode(lambda s, n: {}, False, _dynamic),
    # QDQ with activation ranges calibrated on train images prepared as the validator prepares them
    "static": QuantizeMode(_static_params, True, _static),
}
