"""Reading ONNX graphs of YOLO models: the head's nodes to keep in float, and Conv counts.

Node names of Ultralytics' exports carry the PyTorch module path (`/model.22/dfl/Softmax`), so
a graph's last module is the one whose node produces the graph output; nothing is hand-listed.
"""

from posecompress.runtime.formats import onnx_convs
from posecompress.runtime.runtimes import runtime_of

# none: quantize every node onnxruntime can; head: the last module's non-Conv nodes (its box /
# keypoint decoding, with ranges in pixels, plus its branches' activations); head_decoding: the
# same but the activations right after the head's Convs (SiLU, ReLU, Hardswish) are quantized too.
KEEP_FLOAT = ("none", "head", "head_decoding")


def module_of(node_name: str) -> str:
    """The top-level module prefix of a node name ('/model.22/dfl/Softmax' -> '/model.22/'), or ''."""
    parts = node_name.split("/")
    return f"/{parts[1]}/" if len(parts) > 2 and node_name.startswith("/") else ""


def last_module(graph) -> str:
    """Prefix of the module whose node produces the graph's first output."""
    out = graph.output[0].name
    producer = next((n for n in graph.node if out in n.output), None)
    prefix = module_of(producer.name) if producer is not None else ""
    if not prefix:
        raise ValueError(f"cannot tell the last module: output {out} comes from node "
                         f"{producer.name if producer is not None else 'none'!r}")
    return prefix


def activation_nodes(graph) -> set:
    """Names of the activations on a Conv's output: Relu and HardSwish nodes, and the Sigmoid and
    Mul nodes that form x * sigmoid(x) (SiLU)."""
    conv_out = {n.output[0] for n in graph.node if n.op_type == "Conv"}
    sig = {n.output[0]: n.name for n in graph.node if n.op_type == "Sigmoid" and n.input[0] in conv_out}
    found = {n.name for n in graph.node if n.op_type in ("Relu", "HardSwish") and n.input[0] in conv_out}
    for n in graph.node:
        if n.op_type == "Mul" and len(n.input) == 2:
            a, b = n.input
            for x, s in ((a, b), (b, a)):
                if s in sig and x in conv_out and sig_input(graph, s) == x:
                    found |= {n.name, sig[s]}
    return found


def stem_nodes(graph) -> list:
    """Names of the stem: the Convs that read the graph's input image, and their activations.

    Left in float (quantize's `float_stem`): with 3 input channels a 3x3 Conv has only 27 values
    per output, too short for the INT8 kernels (onnxruntime ran yolov8n-pose's stem 0.54x as fast
    in INT8 as in FP32 at 480x640), and the image then needs no QuantizeLinear of its own.
    """
    image = graph.input[0].name
    convs = [n for n in graph.node if n.op_type == "Conv" and n.input[0] == image]
    outputs = {n.output[0] for n in convs}
    acts = activation_nodes(graph)
    return [n.name for n in convs] + [n.name for n in graph.node if n.name in acts and set(n.input) & outputs]


def sig_input(graph, sig_output: str) -> str:
    """The input of the Sigmoid node producing sig_output."""
    return next(n.input[0] for n in graph.node if n.op_type == "Sigmoid" and n.output[0] == sig_output)


def float_nodes(graph, keep: str, stem: bool = False) -> list:
    """Names of the nodes to leave in float: the head's for a KEEP_FLOAT choice, then the stem's
    (stem_nodes) when `stem`."""
    head = []
    if keep != "none":
        prefix = last_module(graph)
        head = [n.name for n in graph.node if n.name.startswith(prefix) and n.op_type != "Conv"]
    if keep == "head_decoding":
        activations = activation_nodes(graph)
        head = [n for n in head if n not in activations]
    return head + (stem_nodes(graph) if stem else [])


def conv_counts(fp32_path, int8_path) -> tuple:
    """(conv_total, conv_quantized): Conv nodes of the FP32 graph, and the convolutions of the INT8
    model (in either runtime's format) that compute in integers, as its runtime counts them
    (runtime/runtimes.py)."""
    return onnx_convs(fp32_path), runtime_of(int8_path).int8_convs(int8_path)
