"""The activity classifier's data, its converted PyTorch model, and how both are measured.

The PyTorch model is the `torch.fx.GraphModule` that `posecompress.classifier.tf_conversion` builds from the
user's TensorFlow model; it is saved whole (`torch.save`), since structured pruning changes
its shapes. Pruning acts on the weights of its `nn.Linear` / `nn.Conv*` modules.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.fx
from torch import nn

from posecompress.common.checks import InputError, existing_file

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def load_activity(folder) -> dict:
    """x/y of the train and val splits and the class names of <folder>/{train,val}.csv, classes.txt."""
    folder = existing_file(folder, "activity dataset")
    classes_file = existing_file(Path(folder) / "classes.txt", "class list")
    classes = [c.strip() for c in classes_file.read_text().splitlines() if c.strip()]
    if len(classes) < 2:
        raise InputError(f"class list {classes_file}: fewer than 2 class names")
    out = {"classes": classes}
    for split in ("train", "val"):
        path = existing_file(Path(folder) / f"{split}.csv", f"{split} split")
        try:
            table = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{split} split {path}: not a readable CSV ({e.__class__.__name__})") from None
        if "label" not in table.columns or table.shape[1] < 2 or len(table) == 0:
            raise InputError(f"{split} split {path}: expected feature columns and a 'label' column")
        x = table.drop(columns="label")
        if not all(np.issubdtype(t, np.number) for t in x.dtypes):
            raise InputError(f"{split} split {path}: non-numeric feature columns")
        labels = table["label"]
        bad = labels[~labels.isin(range(len(classes)))]
        if len(bad):
            raise InputError(f"{split} split {path}: label {bad.iloc[0]} is outside the "
                             f"{len(classes)} classes of {classes_file}")
        out[f"x_{split}"] = x.to_numpy(np.float32, copy=True)
        out[f"y_{split}"] = labels.to_numpy(np.int64, copy=True)
    if out["x_train"].shape[1] != out["x_val"].shape[1]:
        raise InputError(f"activity dataset {folder}: train and val have different feature columns")
    return out


def save_model(model: nn.Module, path) -> None:
    """The whole module, pickled (shapes may differ from the original's)."""
    torch.save(model, path)


def load_model(path) -> nn.Module:
    """A classifier saved by `save_model`, in eval mode."""
    import onnx2torch  # noqa: F401  (its module classes must be importable to unpickle)

    path = existing_file(path, "classifier")
    try:
        model = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as e:  # torch raises many types for a file that is not its pickle
        raise InputError(f"classifier {path}: not a saved PyTorch classifier ({e.__class__.__name__})") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"classifier {path}: holds a {type(model).__name__}, not a model")
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """The model's outputs (scores per class) for the rows of x."""
    model.eval()
    parts = [model(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(parts).numpy()


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of rows whose predicted class is the label, in percent (as the study reports)."""
    return float((y == pred).mean() * 100)


def per_class(y: np.ndarray, pred: np.ndarray, classes: list) -> dict:
    """Precision and recall per class name (0 where a class is never predicted / never present)."""
    out = {}
    for i, name in enumerate(classes):
        tp = int(((pred == i) & (y == i)).sum())
        predicted, present = int((pred == i).sum()), int((y == i).sum())
        out[name] = {"precision": tp / predicted if predicted else 0.0,
                     "recall": tp / present if present else 0.0}
    return out


def write_confusion_csv(path, y: np.ndarray, pred: np.ndarray, classes: list) -> None:
    """actual,predicted rows with class names: the data of DVC's `confusion` template."""
    from posecompress.common.outputs import atomic_path

    table = pd.DataFrame({"actual": [classes[i] for i in y], "predicted": [classes[i] for i in pred]})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def prunable(model: nn.Module) -> list:
    """Every Linear / Conv module: pruning acts on their weights."""
    return [m for m in model.modules() if isinstance(m, PRUNABLE)]


def graph_constant(gm, node):
    """The tensor a torch.fx get_attr node reads (an onnx2torch initializer), else None."""
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr":
        return None
    owner, _, name = node.target.rpartition(".")
    value = getattr(gm.get_submodule(owner) if owner else gm, name)
    return value if torch.is_tensor(value) else None


def outputs_are_probabilities(scores: np.ndarray) -> bool:
    """Whether the model ends in a softmax (rows of non-negative scores summing to 1)."""
    return bool((scores >= 0).all() and np.allclose(scores.sum(axis=1), 1, atol=1e-4))


def check_fits(model: nn.Module, data: dict, where) -> np.ndarray:
    """The model's val outputs, after checking it takes the dataset's features and scores its classes."""
    n_features, n_classes = data["x_val"].shape[1], len(data["classes"])
    try:
        scores = predict(model, data["x_val"])
    except RuntimeError as e:
        raise InputError(f"classifier {where}: does not take the dataset's {n_features} features "
                         f"({str(e).splitlines()[0]})") from None
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        raise InputError(f"classifier {where}: outputs shape {list(scores.shape[1:])}, "
                         f"expected {n_classes} class scores")
    return scores


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Counts, rows actual, columns predicted."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def export_onnx(model, path, n_features: int, opset: int) -> None:
    """The model as ONNX at `opset`, with a dynamic batch axis.

    The TorchScript exporter, on purpose: the torch.export one needs onnxscript, not installed."""
    import warnings

    from posecompress.common.outputs import atomic_path

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export",
                                DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, n_features),), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["keypoints"], output_names=["scores"],
                          dynamic_axes={"keypoints": {0: "batch"}, "scores": {0: "batch"}})
