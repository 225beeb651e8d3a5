"""Exported models on disk, format by format: ONNX files and OpenVINO IR folders.

An ONNX file is one `.onnx`; an OpenVINO model is an IR folder `<stem>_openvino_model/` holding
`<stem>.xml`, `<stem>.bin` and Ultralytics' `metadata.yaml` (the two forms Ultralytics' exporter
writes and its AutoBackend loads). Each function here reads one format; runtime/runtimes.py
says which format a path is and which of these functions read it.
"""
import ast
from pathlib import Path

from posecompress.common.checks import InputError

OPENVINO_SUFFIX = "_openvino_model"  # AutoBackend picks OpenVINO by this part of the name


def is_ir(path) -> bool:
    """Whether a path is an OpenVINO IR folder (or an IR's .xml file)."""
    p = Path(path)
    return (p.is_dir() and p.name.endswith(OPENVINO_SUFFIX)) or p.suffix == ".xml"


def ir_xml(path) -> Path:
    """The .xml graph of an IR folder (its only one, with its .bin), or the .xml file itself."""
    p = Path(path)
    if p.suffix == ".xml":
        return p
    xml = sorted(p.glob("*.xml"))
    if len(xml) != 1 or not xml[0].with_suffix(".bin").is_file():
        raise InputError(f"model {path}: not an OpenVINO IR folder (one .xml with its .bin)")
    return xml[0]


def model_files(path) -> list:
    """The files an exported model consists of (one .onnx file, or an IR folder's files), sorted."""
    p = Path(path)
    return sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]


def model_bytes(path) -> int:
    """Bytes of an exported model, all its files together."""
    return sum(f.stat().st_size for f in model_files(path))


def _literal(value):
    try:
        return ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError):
        return value


def _onnx_graph(path, what: str = "model"):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises several kinds for a file that is not a model
        raise InputError(f"{what} {path}: not an ONNX model ({e.__class__.__name__})") from None


def onnx_metadata(path) -> dict:
    """Ultralytics' metadata of an ONNX export (task, imgsz, names, kpt_shape, end2end, ...) as
    Python values: metadata_props hold their repr strings."""
    return {m.key: _literal(m.value) for m in _onnx_graph(path).metadata_props}


def ir_metadata(path) -> dict:
    """Ultralytics' metadata of an IR folder (its metadata.yaml), as Python values."""
    import yaml

    p = Path(path)
    f = (p.parent if p.suffix == ".xml" else p) / "metadata.yaml"
    meta = yaml.safe_load(f.read_text()) if f.is_file() else None
    return {k: _literal(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def onnx_io_dims(path) -> tuple:
    """(input name, input dims, first output name, first output dims); '?' for a free dimension."""
    g = _onnx_graph(path).graph

    def dims(value):
        return [d.dim_value or "?" for d in value.type.tensor_type.shape.dim]
    return g.input[0].name, dims(g.input[0]), g.output[0].name, dims(g.output[0])


def ir_io_dims(path) -> tuple:
    """onnx_io_dims of an OpenVINO IR."""
    import openvino as ov

    def dims(shape):
        return [d.get_length() if d.is_static else "?" for d in shape]

    def name(port):
        return min(port.get_names(), default=port.get_node().get_friendly_name())

    m = ov.Core().read_model(str(ir_xml(path)))
    i, o = m.input(), m.output(0)
    return name(i), dims(i.get_partial_shape()), name(o), dims(o.get_partial_shape())


def onnx_convs(path) -> int:
    """Conv nodes of an ONNX graph."""
    return sum(n.op_type == "Conv" for n in _onnx_graph(path).graph.node)


def onnx_int8_convs(path) -> int:
    """Convs of an ONNX graph that compute in integers: QLinearConv and ConvInteger nodes
    (QOperator / dynamic), plus QDQ Convs whose input and weight both come from DequantizeLinear
    (onnxruntime fuses each such DQ -> Conv -> Q group into one QLinearConv when it loads it)."""
    g = _onnx_graph(path).graph
    dq = {n.output[0] for n in g.node if n.op_type == "DequantizeLinear"}
    integer = sum(n.op_type in ("QLinearConv", "ConvInteger") for n in g.node)
    return integer + sum(n.op_type == "Conv" and n.input[0] in dq and n.input[1] in dq for n in g.node)


# ops that move or select INT8 values without computing on them: a Convolution reading through
# them reads what the FakeQuantize before them quantized (C2f's Split, SPPF's MaxPool, the Concats)
PASS_THROUGH = ("Concat", "Split", "VariadicSplit", "MaxPool", "Interpolate", "Reshape", "Transpose",
                "StridedSlice", "Slice")


def ir_int8_convs(path) -> int:
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

    m = ov.Core().read_model(str(ir_xml(path)))
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
