"""What a Keras activity classifier offers each pruning method, read from the Keras model itself, so
a recipe that cannot work on it is refused before the conversion and the YOLO track have run."""
from pathlib import Path

# tf_conversion imports onnx2torch, and with it the triton that crashes when loaded after TensorFlow
from posecompress.classifier.tf_conversion import keras_layers
from posecompress.common.checks import InputError, existing_file

# layers between two Dense layers that act on each feature alone: removing a neuron of the first
# removes one feature of theirs and one input of the second (posecompress.classifier.pruning)
ELEMENTWISE = {"Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "GaussianNoise", "GaussianDropout",
               "AlphaDropout", "BatchNormalization", "Identity"}


def load_keras(path):
    """The Keras model of a .keras file (a SavedModel directory has no layers to read: None)."""
    path = existing_file(path, "TensorFlow model")
    if Path(path).is_dir():
        return None
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a broken or foreign file
        raise InputError(f"TensorFlow model {path}: not a loadable Keras model ({e.__class__.__name__})") from None


def hidden_dense_layers(model) -> list:
    """Names of the Dense layers whose output reaches another Dense layer through element-wise
    layers only, in layer order: what structured (neuron) pruning can narrow."""
    layers = [layer for layer in keras_layers(model)  # nested models' own layers, not the containers
              if not hasattr(layer, "layers") and type(layer).__name__ != "InputLayer"]
    hidden = []
    for i, layer in enumerate(layers):
        if type(layer).__name__ != "Dense":
            continue
        nxt = next((later for later in layers[i + 1:] if type(later).__name__ not in ELEMENTWISE), None)
        if nxt is not None and type(nxt).__name__ == "Dense":
            hidden.append(layer.name)
    return hidden
