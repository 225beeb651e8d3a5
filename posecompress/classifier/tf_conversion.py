"""TensorFlow classifier -> ONNX (tf2onnx) -> PyTorch (onnx2torch) with trainable weights.

Keras 3 models go through a SavedModel (`model.export`), the route tf2onnx handles robustly;
its `from_keras` breaks on Keras 3. onnx2torch turns TensorFlow's MatMul + BiasAdd into graph
operations reading buffers, so the converted model would have no parameters at all:
`linearize` rewrites each constant MatMul (and the constant Add/Mul that follow it, i.e. the
bias and an inference-mode BatchNormalization) into one `nn.Linear`, and makes every other
constant tensor with more than one float element a Parameter.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx2torch  # before TensorFlow: the triton it pulls in (via torchvision) segfaults when loaded after TF
import torch
from torch import nn

from posecompress.common.checks import InputError, existing_file
from posecompress.common.outputs import scratch_dir
from posecompress.quiet_logs import import_tensorflow
from posecompress.classifier.models import graph_constant
from posecompress.runtime.sessions import onnx_runner

# The Keras layers an ordinary classifier uses and the chain converts exactly.
SUPPORTED_LAYERS = {
    "InputLayer", "Dense", "Conv1D", "Conv2D", "BatchNormalization", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Flatten", "Reshape",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "ZeroPadding1D",
    "ZeroPadding2D", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Identity", "Add",
    "Concatenate", "Sequential", "Functional"}


def keras_layers(model):
    """Every layer of a Keras model, nested models included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from keras_layers(layer)


def load_keras(path):
    """The Keras model of a .keras file; InputError in one line when it does not load."""
    import_tensorflow()  # before keras, which imports it
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a broken or foreign file
        raise InputError(f"TensorFlow model {path}: not a loadable Keras model ({e.__class__.__name__})") from None


def saved_model(path, workdir: Path) -> Path:
    """A SavedModel directory for a .keras file or SavedModel directory, checked for layers we convert."""
    path = existing_file(path, "TensorFlow model")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise InputError(f"TensorFlow model {path}: a directory without saved_model.pb, not a SavedModel")
        return path
    if path.suffix != ".keras":
        raise InputError(f"TensorFlow model {path}: not a .keras file or SavedModel directory")
    model = load_keras(path)
    for layer in keras_layers(model):
        if type(layer).__name__ not in SUPPORTED_LAYERS:
            raise InputError(f"TensorFlow model {path}: layer '{layer.name}' ({type(layer).__name__}) "
                             f"is not supported; supported: Dense, Conv1D/2D, BatchNormalization, Dropout, "
                             f"Flatten, Reshape, pooling, activations")
    out = workdir / "saved_model"
    model.export(str(out), verbose=False)
    return out


def serving_function(saved_dir: Path, n_features: int, source=None):
    """The SavedModel's serving signature, checked to take one (batch, n_features) float input.
    Errors name `source`, the user's model file (default: saved_dir itself)."""
    source = source or saved_dir
    tf = import_tensorflow()

    try:
        fn = tf.saved_model.load(str(saved_dir)).signatures["serving_default"]
    except (KeyError, OSError, ValueError) as e:
        raise InputError(f"TensorFlow model {source}: no serving signature ({e.__class__.__name__})") from None
    inputs = fn.structured_input_signature[1]
    if len(inputs) != 1:
        raise InputError(f"TensorFlow model {source}: takes {len(inputs)} inputs, expected one keypoint vector")
    spec = next(iter(inputs.values()))
    if spec.shape.rank != 2 or spec.shape[1] != n_features:
        raise InputError(f"TensorFlow model {source}: input shape {spec.shape.as_list()}, but the dataset "
                         f"provides keypoint vectors of {n_features} values")
    return fn


def tf_predict(fn, x: np.ndarray) -> np.ndarray:
    """Outputs of a serving signature with one output."""
    tf = import_tensorflow()

    outputs = fn(tf.constant(x))
    return next(iter(outputs.values())).numpy()


def to_onnx(saved_dir: Path, onnx_path: Path, opset: int, source=None) -> None:
    """tf2onnx's own command line on a SavedModel; its last error line if it fails, naming `source`."""
    res = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_dir),
                          "--opset", str(opset), "--output", str(onnx_path)], capture_output=True, text=True)
    if res.returncode != 0 or not onnx_path.is_file():
        lines = [line for line in res.stderr.splitlines() if "Error" in line or "error" in line]
        raise InputError(f"TensorFlow model {source or saved_dir}: tf2onnx failed: {(lines or ['?'])[-1].strip()}")
    import onnx

    # tf2onnx writes the temporary SavedModel's path into the graph: name the user's file instead,
    # so the same model converts to the same bytes
    model = onnx.load(str(onnx_path))
    model.graph.doc_string = f"converted from {source or saved_dir}"
    onnx.save(model, str(onnx_path))


def to_torch(onnx_path: Path, source=None) -> torch.fx.GraphModule:
    """onnx2torch's module for an ONNX file, with its weights made trainable (see `linearize`).
    Errors name `source`, the model the ONNX file was converted from (default: the file itself)."""
    import onnx

    try:
        model = onnx2torch.convert(onnx.load(str(onnx_path)))
    except NotImplementedError as e:  # onnx2torch names the operation it has no converter for
        op = str(e).split("operation_type='")[-1].split("'")[0]
        what = f"TensorFlow model {source}: its ONNX" if source else f"ONNX model {onnx_path}:"
        raise InputError(f"{what} operation {op} has no PyTorch converter in onnx2torch "
                         f"(the layer or activation that produces it is not supported)") from None
    return linearize(model)


def _float_constant(gm, node):
    """The float tensor a get_attr node reads, else None."""
    value = graph_constant(gm, node)
    return value if value is not None and value.is_floating_point() else None


def _binary_op(gm, node):
    """The torch function of an onnx2torch binary math node (Add, Mul, ...), else None."""
    if node.op != "call_module" or type(gm.get_submodule(node.target)).__name__ != "OnnxBinaryMathOperation":
        return None
    return gm.get_submodule(node.target).math_op_function


def linearize(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Constant MatMul (+ following constant per-feature Add/Mul/Sub) -> nn.Linear; other float
    constants with more than one element -> Parameters."""
    count = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)).__name__ != "OnnxMatMul":
            continue
        w = _float_constant(gm, node.args[1])
        if w is None or w.dim() != 2:
            continue
        weight, bias = w.T.clone(), torch.zeros(w.shape[1])
        last = node
        while len(last.users) == 1:
            user = next(iter(last.users))
            fn = _binary_op(gm, user)
            if fn is None or len(user.args) != 2:
                break
            a, b = user.args
            c = _float_constant(gm, b if a is last else a)
            if c is None or c.numel() not in (1, w.shape[1]) or (c.dim() > 1 and c.shape[-1] != c.numel()):
                break
            c = c.reshape(-1)
            if fn is torch.add:
                bias = bias + c
            elif fn is torch.mul:
                weight, bias = weight * c[:, None], bias * c
            elif fn is torch.sub and a is last:
                bias = bias - c
            else:
                break
            last = user
        linear = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        name = f"linear_{count}"
        count += 1
        gm.add_submodule(name, linear)
        with gm.graph.inserting_after(last):
            new = gm.graph.call_module(name, (node.args[0],))
        last.replace_all_uses_with(new)
        while last is not node:  # erase the folded chain, newest first
            prev = next(a for a in last.args if isinstance(a, torch.fx.Node) and a.op != "get_attr")
            gm.graph.erase_node(last)
            last = prev
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    _drop_unread_constants(gm)
    _buffers_to_parameters(gm)
    gm.recompile()
    return gm


def _drop_unread_constants(gm) -> None:
    """Remove the ONNX initializers no graph node reads any more (those folded into nn.Linear):
    left in place they would become Parameters the module never uses, and inflate its parameter
    count and so understate every prune ratio. Buffers of called modules (a BatchNorm's running
    statistics) are read inside the module and stay."""
    read = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    called = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    for owner, module in gm.named_modules():
        if any(owner == c or owner.startswith(c + ".") for c in called):
            continue
        for name, _ in list(module.named_buffers(recurse=False)):
            if (f"{owner}.{name}" if owner else name) not in read:
                delattr(module, name)


def _buffers_to_parameters(gm) -> None:
    """Float buffers with more than one element become Parameters (scalars stay constants)."""
    for module in gm.modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf.is_floating_point() and buf.numel() > 1:
                delattr(module, name)
                module.register_parameter(name, nn.Parameter(buf.clone()))


def convert(model_path, workdir: Path, opset: int, n_features: int):
    """(TF serving function, ONNX path, PyTorch module) for a .keras file or SavedModel."""
    sm = saved_model(model_path, workdir)
    fn = serving_function(sm, n_features, model_path)  # errors name the user's file, not the temporary copy
    onnx_path = workdir / "model.onnx"
    to_onnx(sm, onnx_path, opset, model_path)
    return fn, onnx_path, to_torch(onnx_path, model_path)


def workdir():
    """A temporary folder for the SavedModel and ONNX of one conversion."""
    return scratch_dir("convert_tf")


def onnx_predict(onnx_path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's outputs for the rows of x."""
    return onnx_runner(onnx_path)(x)[0]


def parity(outputs: dict) -> dict:
    """max_abs_diff and same-class share (percent) between every pair of the named outputs."""
    names, out = list(outputs), {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            out[f"{a}_vs_{b}"] = {
                "max_abs_diff": float(np.abs(outputs[a] - outputs[b]).max()),
                "same_class_percent": float((outputs[a].argmax(1) == outputs[b].argmax(1)).mean() * 100)}
    return out


def check_parity(report: dict, tolerance: float) -> None:
    """Stop when any pair disagrees on a class or differs beyond the tolerance."""
    for pair, r in report.items():
        if r["same_class_percent"] < 100 or r["max_abs_diff"] > tolerance:
            raise InputError(f"conversion parity failed ({pair}): max_abs_diff {r['max_abs_diff']:.3g} "
                             f"(tolerance {tolerance:g}), same class {r['same_class_percent']:.2f}%")
