"""TF -> ONNX -> PyTorch over several small Keras architectures: parity, trainable weights, bad input.

TensorFlow and tf2onnx are slow to start: each model is converted once per session, and bad
input is checked in-process except for the stage's own one-line / exit-2 contract."""
import copy
import sys

import numpy as np
import onnx
import pytest
import torch
import yaml
from torch.nn.utils import prune

from posecompress.common.checks import InputError
from posecompress.classifier.models import outputs_are_probabilities, predict
from posecompress.classifier.pruning import prune_neurons
from posecompress.classifier.tf_conversion import onnx_predict
# posecompress.classifier.tf_conversion imports onnx2torch before TensorFlow (see there)
from posecompress.classifier.tf_conversion import convert, saved_model, serving_function, tf_predict, to_torch
from tests.conftest import ROOT, run


def _mlp(keras, n, k):
    return keras.Sequential([keras.Input((n,)), keras.layers.Dense(48), keras.layers.BatchNormalization(),
                             keras.layers.Activation("relu"), keras.layers.Dropout(0.3),
                             keras.layers.Dense(24, activation="tanh"), keras.layers.BatchNormalization(),
                             keras.layers.Dense(k, activation="softmax")])


def _conv1d(keras, n, k):
    return keras.Sequential([keras.Input((n,)), keras.layers.Reshape((n // 3, 3)),
                             keras.layers.Conv1D(16, 3, padding="same", activation="relu"),
                             keras.layers.BatchNormalization(), keras.layers.MaxPooling1D(2),
                             keras.layers.Conv1D(8, 3, activation="elu"), keras.layers.Flatten(),
                             keras.layers.Dense(32, activation="sigmoid"), keras.layers.Dropout(0.2),
                             keras.layers.Dense(k, activation="softmax")])


def _conv2d(keras, n, k):
    return keras.Sequential([keras.Input((n,)), keras.layers.Reshape((n // 3, 3, 1)),
                             keras.layers.Conv2D(8, (3, 3), padding="same"), keras.layers.LeakyReLU(0.1),
                             keras.layers.AveragePooling2D((2, 1)), keras.layers.Conv2D(8, (3, 1), activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(16, activation="selu"),
                             keras.layers.Dense(k), keras.layers.Softmax()])


def _logits(keras, n, k):  # no softmax at the end: the outputs are logits
    return keras.Sequential([keras.Input((n,)), keras.layers.Dense(32, activation="softplus"),
                             keras.layers.Dense(k)])


ARCHITECTURES = {"mlp_bn_dropout": _mlp, "conv1d_pool_flatten": _conv1d, "conv2d_global_pool": _conv2d,
                 "mlp_logits": _logits}


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory, activity):
    """Each architecture fitted one epoch on the tiny set (BatchNorm statistics and biases not trivial)."""
    import keras

    keras.utils.set_random_seed(0)
    folder, out = tmp_path_factory.mktemp("keras_models"), {}
    n, k = activity["x_train"].shape[1], len(activity["classes"])
    for name, build in ARCHITECTURES.items():
        model = build(keras, n, k)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=name == "mlp_logits"))
        model.fit(activity["x_train"], activity["y_train"], epochs=1, batch_size=64, verbose=0)
        out[name] = folder / f"{name}.keras"
        model.save(out[name])
    return out


@pytest.fixture(scope="session")
def converted(keras_models, activity, tmp_path_factory):
    """name -> (TF serving function, ONNX path, PyTorch module), each converted once."""
    out = {}
    for name, path in keras_models.items():
        out[name] = convert(path, tmp_path_factory.mktemp(name), 17, activity["x_val"].shape[1])
    return out


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_round_trip_keeps_outputs_and_makes_weights_trainable(name, converted, keras_models, activity):
    fn, onnx_path, model = converted[name]
    model = copy.deepcopy(model)
    x = activity["x_val"]
    outs = {"tf": tf_predict(fn, x), "onnx": onnx_predict(onnx_path, x), "torch": predict(model, x)}
    for a, b in [("tf", "onnx"), ("tf", "torch"), ("onnx", "torch")]:
        assert np.abs(outs[a] - outs[b]).max() < 1e-4, (a, b)
        assert (outs[a].argmax(1) == outs[b].argmax(1)).all(), (a, b)
    # every weight is a Parameter: no float tensor with more than one element is left as a buffer
    assert not [n for n, b in model.named_buffers() if b.is_floating_point() and b.numel() > 1]
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d))]
    import keras

    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
    assert len(layers) == sum(isinstance(la, kinds) for la in keras.models.load_model(keras_models[name]).layers)
    # an optimizer and pruning see them: gradients reach every Linear/Conv weight, pruning changes outputs
    loss = torch.log(torch.softmax(model(torch.from_numpy(x)), 1)[:, 0]).mean()
    loss.backward()
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in layers)
    for m in layers:
        prune.l1_unstructured(m, "weight", amount=0.9)
    assert np.abs(predict(model, x) - outs["torch"]).max() > 1e-3


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_structured_pruning_shrinks_hidden_dense_layers(name, converted, activity):
    """Half the neurons of every hidden Dense layer go, through activations and per-feature
    scale/shift (a BatchNorm after an activation) alike; the outputs stay class scores."""
    model = copy.deepcopy(converted[name][2])
    before = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    changes = prune_neurons(model, 0.5)
    after = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [w1 for _, _, w1 in changes] == [round(w / 2) for w in before[:-1]] == after[:-1]
    assert after[-1] == before[-1] == len(activity["classes"])
    scores = predict(model, activity["x_val"])
    assert np.isfinite(scores).all()
    assert outputs_are_probabilities(scores) == (name != "mlp_logits")


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_parameter_is_used(name, converted, activity):
    """No Parameter is a leftover the forward pass never reads (the constants folded into nn.Linear
    once stayed, and the classifier's parameter count read 30,632 where 28,052 were used)."""
    model = copy.deepcopy(converted[name][2])
    x = torch.from_numpy(activity["x_val"][:16])
    with torch.no_grad():
        ref = model(x)
        for pname, p in model.named_parameters():
            kept = p.clone()
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))  # not uniform: softmax ignores a shift
            assert not torch.allclose(model(x), ref), f"{pname} does not change the outputs"
            p.copy_(kept)


def test_folds_batchnorm_into_linear_layers(converted, keras_models):
    import keras

    model = converted["mlp_bn_dropout"][2]
    dense = [layer for layer in keras.models.load_model(keras_models["mlp_bn_dropout"]).layers
             if isinstance(layer, keras.layers.Dense)]
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [tuple(d.kernel.shape) for d in dense]


def test_saved_model_directory_is_accepted(keras_models, activity, tmp_path):
    import keras

    saved = tmp_path / "saved"
    keras.models.load_model(keras_models["conv1d_pool_flatten"]).export(str(saved), verbose=False)
    fn, onnx_path, model = convert(saved, tmp_path, 15, activity["x_val"].shape[1])
    x = activity["x_val"]
    assert (tf_predict(fn, x).argmax(1) == predict(model, x).argmax(1)).all()
    assert np.abs(onnx_predict(onnx_path, x) - predict(model, x)).max() < 1e-4


def test_operation_without_torch_converter_is_named(tmp_path):
    """Keras' gelu becomes an ONNX Erfc, which onnx2torch cannot convert."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Erfc", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "erfc.onnx")
    with pytest.raises(InputError, match="operation Erfc has no PyTorch converter"):
        to_torch(tmp_path / "erfc.onnx")


def test_unsupported_layer_and_wrong_input_are_named(tmp_path, activity):
    import keras

    n, k = activity["x_val"].shape[1], len(activity["classes"])
    lstm = keras.Sequential([keras.Input((n,)), keras.layers.Reshape((n // 3, 3)), keras.layers.LSTM(4),
                             keras.layers.Dense(k, activation="softmax")])
    lstm.save(tmp_path / "lstm.keras")
    with pytest.raises(InputError, match=r"layer 'lstm' \(LSTM\) is not supported"):
        saved_model(tmp_path / "lstm.keras", tmp_path)
    keras.Sequential([keras.Input((34,)), keras.layers.Dense(k, activation="softmax")]).save(tmp_path / "xy.keras")
    with pytest.raises(InputError, match=rf"input shape \[None, 34\], but the dataset provides keypoint "
                                         rf"vectors of {n} values"):
        serving_function(saved_model(tmp_path / "xy.keras", tmp_path / "xy"), n)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a loadable Keras model"):
        saved_model(tmp_path / "junk.keras", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without saved_model.pb"):
        saved_model(tmp_path / "empty", tmp_path)


# --- the stage's command line on bad input: one line, exit 2, nothing written ----------------

def convert_stage(model, data, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"convert_tf": {"opset": 17, "tolerance": 1e-4}}))
    out = tmp_path / "out"
    res = run([sys.executable, "-m", "stages.convert_tf", "--model", str(model), "--data", str(data),
               "--onnx", str(out / "c.onnx"), "--torch", str(out / "c.pt"), "--metrics", str(out / "m.json"),
               "--confusion", str(out / "c.csv"), "--params", str(params)], ROOT, check=False)
    return res, out


@pytest.mark.parametrize("layers, message", [
    (lambda keras, n, k: [keras.Input((34,)), keras.layers.Dense(k, activation="softmax")],
     "input shape [None, 34], but the dataset provides keypoint vectors of 51 values"),
    (lambda keras, n, k: [keras.Input((n,)), keras.layers.Dense(8, activation="gelu"),
                          keras.layers.Dense(k, activation="softmax")],
     "its ONNX operation Erfc has no PyTorch converter"),
])
def test_conversion_errors_name_the_users_file(layers, message, tmp_path, tiny_data, activity):
    """Not the temporary SavedModel or ONNX file the conversion goes through."""
    import keras

    model = tmp_path / "mine.keras"
    keras.Sequential(layers(keras, activity["x_val"].shape[1], len(activity["classes"]))).save(model)
    res, out = convert_stage(model, tiny_data / "activity", tmp_path)
    # TensorFlow's C++ start-up lines (oneDNN, absl) reach stderr before Python can stop them; the
    # stage's own report is its one `error:` line, the last
    errors = [line for line in res.stderr.strip().splitlines() if line.startswith("error:")]
    assert res.returncode == 2 and errors == res.stderr.strip().splitlines()[-1:], res.stderr[-2000:]
    assert errors[0].startswith(f"error: TensorFlow model {model}: ") and message in errors[0], errors[0]
    assert "convert_tf." not in errors[0] and (not out.exists() or not any(out.iterdir()))


def _labels_outside(tmp_path, data):
    import shutil

    bad = tmp_path / "activity"
    shutil.copytree(data, bad)
    text = (bad / "val.csv").read_text().splitlines()
    text[1] = ",".join(text[1].split(",")[:-1] + ["25"])
    (bad / "val.csv").write_text("\n".join(text) + "\n")
    return None, bad


def _not_a_model(tmp_path, data):
    (tmp_path / "notes.txt").write_text("hello")
    return tmp_path / "notes.txt", data


@pytest.mark.parametrize("make, message", [
    (_not_a_model, "not a .keras file or SavedModel directory"),
    (_labels_outside, "label 25 is outside the 20 classes"),
])
def test_bad_input_stops_with_one_line(make, message, tmp_path, tiny_data, tiny_classifier):
    model, data = make(tmp_path, tiny_data / "activity")
    model = model or tiny_classifier
    res, out = convert_stage(model, data, tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr[-2000:]
    assert not out.exists() or not any(out.iterdir())
