"""The YOLO track's INT8 modes, one row each: what a `quantize` section must say for the mode,
whether it calibrates on train images, how it writes the INT8 model and which runtime runs it.

| mode     | runtime     | writes               | what it does                                            |
|----------|-------------|----------------------|---------------------------------------------------------|
| dynamic  | onnxruntime | int8.onnx            | the study's: weights INT8 ahead, activation scales at run time (ConvInteger) |
| static   | onnxruntime | int8.onnx            | QDQ, activation ranges calibrated on train images       |
| openvino | openvino    | int8_openvino_model/ | NNCF post-training INT8 of the FP32 ONNX, calibrated the same way |

A new mode is a new row of QUANTIZE_MODES; the quantize stage reads this table only. The nodes
kept in float are chosen from the ONNX graph before any mode runs (onnx_graph.float_nodes), so
every mode keeps the same ones.
"""
from pathlib import Path
from typing import Callable, NamedTuple

from posecompress.common.checks import InputError, param
from posecompress.common.images import validator_tensor
from posecompress.common.outputs import atomic_path
from posecompress.runtime.formats import onnx_metadata, write_openvino
from posecompress.runtime.runtimes import ONNXRUNTIME, OPENVINO, Runtime
from posecompress.yolo.calibration import ImageCalibrationReader
from posecompress.yolo.exported import image_input
from posecompress.yolo.models import check_onnx
from posecompress.yolo.onnx_graph import float_nodes

CALIBRATE_METHODS = ("MinMax", "Entropy", "Percentile", "Distribution")
TYPES = ("QInt8", "QUInt8")


class QuantizeMode(NamedTuple):
    params: Callable     # (section, dotted name) -> the mode's own parameters, checked
    calibrates: bool     # reads `calibration_images` train images
    write: Callable      # (onnx model, source path, destination, params, calibration files, float nodes)
    output: str          # the name it writes in the stage's output folder
    runtime: Runtime = ONNXRUNTIME  # runs what it writes (runtime/runtimes.py)


def _dynamic(model, src, dst, p: dict, files, keep: list) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(model, dst, weight_type=QuantType[p["weight_type"]], per_channel=p["per_channel"],
                     nodes_to_exclude=keep)


def _weight_params(s: dict, n: str) -> dict:
    return {"weight_type": param(s, "weight_type", str, f"{n}.weight_type", choices=TYPES),
            "per_channel": param(s, "per_channel", bool, f"{n}.per_channel")}


def _static_params(s: dict, n: str) -> dict:
    return {**_weight_params(s, n), "activation_type": param(s, "activation_type", str, f"{n}.activation_type", choices=TYPES),
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

    name, shape, _ = image_input(src)
    quantize_static(model, dst, ImageCalibrationReader(files, name, shape),
                    quant_format=QuantFormat.QDQ, per_channel=p["per_channel"],
                    activation_type=QuantType[p["activation_type"]],
                    weight_type=QuantType[p["weight_type"]], nodes_to_exclude=keep,
                    calibrate_method=CalibrationMethod[p["calibrate_method"]],
                    extra_options=calibration_chunks(p["calibrate_method"], len(files)))


PRESETS = ("mixed", "performance")


def _openvino_params(s: dict, n: str) -> dict:
    return {"preset": param(s, "preset", str, f"{n}.preset", choices=PRESETS),
            "calibration_images": param(s, "calibration_images", int, f"{n}.calibration_images", 1, 100000)}


def openvino_ignored(ov_model, graph, keep: list) -> list:
    """Friendly names of the OpenVINO ops that compute the ONNX nodes `keep`, for NNCF's IgnoredScope.

    OpenVINO's conversion names each node's last op after the node, but may rename it (the op
    producing a graph output takes the output's name), add unnamed helper ops before it (a Conv
    with bias becomes an unnamed Convolution plus an Add), fuse it (Sigmoid and Mul into Swish) or
    fold it into a constant (shape arithmetic). Output tensor names survive all but folding, so
    ops are found by them, then followed upstream through ops with no tensor names. InputError
    when none of `keep` is found: the names did not survive at all."""
    wanted = {t for n in graph.node if n.name in set(keep) for t in n.output}
    named = [op for op in ov_model.get_ordered_ops() if any(wanted & o.get_names() for o in op.outputs())]
    if wanted and not named:
        raise InputError("OpenVINO's conversion of the ONNX graph kept none of the tensor names of the "
                         "nodes to keep in float; set keep_float: none and float_stem: false for mode openvino")
    found, todo = {}, list(named)
    while todo:
        op = todo.pop()
        found[op.get_friendly_name()] = op
        for i in op.inputs():
            up = i.get_source_output().get_node()
            if up.get_type_name() not in ("Constant", "Parameter") and up.get_friendly_name() not in found \
                    and not any(o.get_names() for o in up.outputs()):
                todo.append(up)
    return sorted(found)


def _gather_for_sliced_gather_elements(model):
    """A copy of an ONNX model where each Slice feeding a GatherElements as its data, on one axis
    with constant bounds, is the equivalent Gather (same name, same output tensor). OpenVINO
    2026.4's conversion drops such a Slice (YOLO26's end-to-end head gathers boxes from
    preds[..., :4]) and then fails GatherElements' shape check ("`data` and `indices` must have
    equal or intersecting dimensions"), in convert_model and in the CPU plugin alike."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    for ge in [n for n in g.node if n.op_type == "GatherElements"]:
        s = producer.get(ge.input[0])
        if s is None or s.op_type != "Slice" or len(s.input) < 4:
            continue
        starts, ends, axes = (consts.get(i) for i in s.input[1:4])
        steps = consts.get(s.input[4]) if len(s.input) > 4 and s.input[4] else np.array([1])
        if any(v is None or v.size != 1 for v in (starts, ends, axes, steps)) or steps[0] != 1 \
                or not 0 <= starts[0] <= ends[0] < 2 ** 31:
            continue
        index = f"{s.name}/gather_index"
        g.initializer.append(numpy_helper.from_array(np.arange(starts[0], ends[0], dtype=np.int64), index))
        at = list(g.node).index(s)
        g.node.remove(s)
        g.node.insert(at, helper.make_node("Gather", [s.input[0], index], list(s.output), name=s.name,
                                           axis=int(axes[0])))
    return model


def _openvino(model, src, dst, p: dict, files, keep: list) -> None:
    import onnx
    import openvino as ov

    from posecompress.common.outputs import scratch_dir
    from posecompress.quiet_logs import import_nncf

    nncf = import_nncf()

    _, shape, _ = image_input(src)
    with scratch_dir("openvino") as tmp:  # the graph OpenVINO converts: see _gather_for_sliced_gather_elements
        onnx_file = tmp / Path(src).name  # the IR records the file's name (not its folder)
        onnx.save(_gather_for_sliced_gather_elements(model), str(onnx_file))
        # convert_model, not read_model: its graph passes fuse x * sigmoid(x) into Swish, which the CPU
        # plugin then runs inside the INT8 convolution (demo baseline INT8: 30.2 -> 25.7 ms at 480x640)
        ov_model = ov.convert_model(str(onnx_file))
        # A static input shape: OpenVINO 2026.4's CPU plugin ran the demo's NNCF INT8 model wrongly with
        # free H and W (class scores off by 0.45, keypoints by 30 px; right when reshaped to any fixed
        # shape). The export size is the accuracy size; runtime.sessions reshapes it to other sizes.
        ov_model.reshape([1, 3, *shape])
        quantized = nncf.quantize(ov_model, nncf.Dataset(files, lambda f: validator_tensor(f, shape)),
                                  preset=nncf.QuantizationPreset[p["preset"].upper()],
                                  target_device=nncf.TargetDevice.CPU, subset_size=len(files),
                                  ignored_scope=nncf.IgnoredScope(names=openvino_ignored(ov_model, model.graph, keep)))
        meta = onnx_metadata(src)
        write_openvino(quantized, dst, {**meta, "args": {**meta.get("args", {}), "dynamic": False}})


QUANTIZE_MODES = {
    # the study's: weights quantized ahead, activation scales computed at run time (ConvInteger)
    "dynamic": QuantizeMode(_weight_params, False, _dynamic, "int8.onnx"),
    # QDQ with activation ranges calibrated on train images prepared as the validator prepares them
    "static": QuantizeMode(_static_params, True, _static, "int8.onnx"),
    # NNCF: FakeQuantize ops calibrated on the same images; OpenVINO runs them as INT8 kernels.
    # preset mixed: symmetric weights, asymmetric activations (as static's U8 activations)
    "openvino": QuantizeMode(_openvino_params, True, _openvino, "int8_openvino_model", OPENVINO),
}


def quantize(src, out, p: dict, calibration_files=()) -> tuple:
    """Write the INT8 model of the ONNX file `src` into the folder `out` as the mode `p["mode"]`
    does; return its path and the names of the ONNX nodes kept in float."""
    import onnx

    model = onnx.load(str(src))
    keep = float_nodes(model.graph, p["keep_float"], p["float_stem"])
    mode = QUANTIZE_MODES[p["mode"]]
    with atomic_path(out) as tmp:
        tmp.mkdir()
        mode.write(model, src, tmp / mode.output, p, calibration_files, keep)
        if mode.runtime is ONNXRUNTIME:
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
