"""What a Keras activity classifier offers each pruning method, read from the Keras model itself, so
a recipe that cannot work on it is refused before the conversion and the YOLO track have run."""
# tf_conversion imports onnx2torch, and with it the triton that crashes when loaded after TensorFlow
from posecompress.classifier.tf_conversion import keras_layers

# layers between two Dense layers that act on each feature alone: removing a neuron of the first
# removes one feature of theirs and one input of the second (posecompress.classifier.pruning)
ELEMENTWISE = {"Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "GaussianNoise", "GaussianDropout",
               "AlphaDropout", "BatchNormalization", "Identity"}


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
