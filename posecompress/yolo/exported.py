"""Exported YOLO pose models in either runtime's format, read one way.

An exported model is an ONNX file (onnxruntime) or an OpenVINO IR folder `<stem>_openvino_model/`
(`<stem>.xml`, `<stem>.bin` and Ultralytics' `metadata.yaml`), the two forms Ultralytics' exporter
writes and its AutoBackend loads. A stage output folder holding exactly one of them (quantize,
peer) stands for that model, so dvc.yaml names one path whatever the runtime.
"""
import ast
from pathlib import Path

from posecompress.common.checks import InputError, existing_file
from posecompress.common.images import onnx_image_input

OPENVINO_SUFFIX = "_openvino_model"  # AutoBackend picks OpenVINO by this part of the name


def is_openvino(path) -> bool:
    """Whether a path is an OpenVINO IR folder."""
    p = Path(path)
    return p.is_dir() and p.name.endswith(OPENVINO_SUFFIX)


def exported_model(path, what: str = "model") -> Path:
    """The model a path stands for: a file, an IR folder, or the one of them inside a stage's folder."""
    p = existing_file(path, what)
    if p.is_file() or is_openvino(p):
        return p
    found = sorted(p.glob("*.onnx")) + sorted(d for d in p.glob(f"*{OPENVINO_SUFFIX}") if d.is_dir())
    if len(found) != 1:
        raise InputError(f"{what} {p}: expected one .onnx file or *{OPENVINO_SUFFIX} folder in it, "
                         f"found {len(found)}")
    return found[0]


def runtime_of(path) -> str:
    """'openvino' for an IR folder, else 'onnxruntime'."""
    return "openvino" if is_openvino(path) else "onnxruntime"


def model_files(path) -> list:
    """The files an exported model consists of (one .onnx file, or an IR folder's files), sorted."""
    p = Path(path)
    return sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]


def model_bytes(path) -> int:
    """Bytes of an exported model, all its files together."""
    return sum(f.stat().st_size for f in model_files(path))


def ir_xml(folder) -> Path:
    """The one .xml graph of an IR folder."""
    xml = sorted(Path(folder).glob("*.xml"))
    if len(xml) != 1 or not xml[0].with_suffix(".bin").is_file():
        raise InputError(f"model {folder}: not an OpenVINO IR folder (one .xml with its .bin)")
    return xml[0]


def _literal(value):
    try:
        return ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError):
        return value


def export_metadata(path) -> dict:
    """Ultralytics' metadata of an exported model (task, imgsz, names, kpt_shape, end2end, ...) as
    Python values: ONNX metadata_props are their repr strings, metadata.yaml holds them as YAML."""
    import yaml

    if is_openvino(path):
        f = Path(path) / "metadata.yaml"
        meta = yaml.safe_load(f.read_text()) if f.is_file() else None
        return {k: _literal(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises several kinds for a file that is not a model
        raise InputError(f"model {path}: not an ONNX model ({e.__class__.__name__})") from None
    return {m.key: _literal(m.value) for m in model.metadata_props}


def _ov_dims(shape) -> list:
    return [d.get_length() if d.is_static else "?" for d in shape]


def _ov_name(port) -> str:
    return min(port.get_names(), default=port.get_node().get_friendly_name())


def _onnx_dims(value) -> list:
    return [d.dim_value or "?" for d in value.type.tensor_type.shape.dim]


def io_dims(path) -> tuple:
    """(input name, input dims, first output name, first output dims); '?' for a free dimension."""
    if is_openvino(path):
        import openvino as ov

        m = ov.Core().read_model(str(ir_xml(path)))
        i, o = m.input(), m.output(0)
        return _ov_name(i), _ov_dims(i.get_partial_shape()), _ov_name(o), _ov_dims(o.get_partial_shape())
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    return g.input[0].name, _onnx_dims(g.input[0]), g.output[0].name, _onnx_dims(g.output[0])


def image_input(path) -> tuple:
    """(name, (h, w), dynamic) of an exported pose model's image input, as
    common.images.onnx_image_input gives it for an ONNX file: (h, w) is the static shape or, when
    height and width are free, the shape it was exported at (metadata `imgsz`)."""
    if not is_openvino(path):
        return onnx_image_input(path)
    name, dims, _, _ = io_dims(path)
    if len(dims) != 4 or dims[1] != 3:
        raise InputError(f"model {path}: input {name} is not a 1x3xHxW image ({dims})")
    if "?" not in dims[2:]:
        return name, (dims[2], dims[3]), False
    try:
        h, w = export_metadata(path)["imgsz"]
    except (KeyError, ValueError, TypeError):
        raise InputError(f"model {path}: free input shape and no [h, w] `imgsz` metadata") from None
    return name, (int(h), int(w)), True


# ops that move or select INT8 values without computing on them: a Convolution reading through
# them reads what the FakeQuantize before them quantized (C2f's Split, SPPF's MaxPool, the Concats)
PASS_THROUGH = ("Concat", "Split", "VariadicSplit", "MaxPool", "Interpolate", "Reshape", "Transpose",
                "StridedSlice", "Slice")


def ir_int8_convs(folder) -> int:
    """Convolutions of an NNCF-quantized IR that run in INT8: their weights are stored as INT8
    constants (Constant i8 -> Convert -> ... -> Multiply by the scale) and their input comes from a
    FakeQuantize, directly or through PASS_THROUGH ops (every input of a Concat quantized)."""
    import openvino as ov

    def source(port):
        return port.get_source_output().get_node()

    def int8_weights(op):
        while op.get_type_name() in ("Multiply", "Subtract", "Convert", "Reshape"):
            op = source(op.input(0))
        return op.get_type_name() == "Constant" and op.get_element_type() in (ov.Type.i8, ov.Type.u8)

    def quantized(op):
        if op.get_type_name() == "FakeQuantize":
            return True
        data = [source(i) for i in op.inputs() if source(i).get_type_name() != "Constant"]
        return op.get_type_name() in PASS_THROUGH and bool(data) and all(quantized(d) for d in data)

    m = ov.Core().read_model(str(ir_xml(folder)))
    return sum(op.get_type_name() == "Convolution" and int8_weights(source(op.input(1)))
               and quantized(source(op.input(0))) for op in m.get_ordered_ops())


def write_openvino(ov_model, folder, metadata: dict) -> Path:
    """Save an OpenVINO model as an IR folder AutoBackend loads (weights kept FP32, not FP16)."""
    import openvino as ov
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder.name[: -len(OPENVINO_SUFFIX)] if folder.name.endswith(OPENVINO_SUFFIX) else "model"
    ov.save_model(ov_model, str(folder / f"{stem}.xml"), compress_to_fp16=False)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    return folder
