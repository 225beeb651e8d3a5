"""Stage convert_tf: the TensorFlow activity classifier -> ONNX -> PyTorch, parity checked.

    python -m stages.convert_tf --model data/models/activity_classifier.keras --data data/activity \
        --onnx outputs/classifier/convert_tf/classifier.onnx --torch outputs/classifier/convert_tf/classifier.pt \
        --metrics metrics/convert_tf.json --confusion plots/convert_tf/confusion.csv

The model is a .keras file or a SavedModel directory taking the dataset's keypoint vector.
Parity on the val split: the largest absolute output difference between TF, ONNX Runtime and
PyTorch, and the share of samples with the same predicted class (must be 100%). Also the
original's accuracy, per-class precision / recall and confusion data (actual,predicted names).
"""
import argparse
import shutil
from pathlib import Path


from posecompress.common.checks import load_params, param, run_stage
from posecompress.classifier.models import (accuracy, check_fits, load_activity, per_class, save_model,
                                      write_confusion_csv)
from posecompress.common.outputs import atomic_path, write_json


def read_params(path) -> dict:
    """The convert_tf section of params.yaml, checked."""
    s = load_params(path, "convert_tf")
    return {"opset": param(s, "opset", int, "convert_tf.opset", 13, 21),
            "tolerance": param(s, "tolerance", float, "convert_tf.tolerance", 0.0, 1.0)}


def main() -> None:
    from posecompress.classifier.tf_conversion import check_parity, convert, onnx_predict, parity, tf_predict, workdir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help=".keras file or SavedModel directory")
    ap.add_argument("--data", required=True, help="activity dataset folder (train.csv, val.csv, classes.txt)")
    ap.add_argument("--onnx", required=True, help="ONNX file to write")
    ap.add_argument("--torch", required=True, help="PyTorch model file to write")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--confusion", required=True, help="confusion plot data (CSV) to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    data = load_activity(a.data)
    with workdir() as tmp:
        fn, onnx_path, model = convert(a.model, Path(tmp), p["opset"], data["x_val"].shape[1])
        outputs = {"tf": tf_predict(fn, data["x_val"]), "onnx": onnx_predict(onnx_path, data["x_val"]),
                   "torch": check_fits(model, data, a.model)}
        report = parity(outputs)
        check_parity(report, p["tolerance"])
        with atomic_path(a.onnx) as t:
            shutil.copy(onnx_path, t)
    with atomic_path(a.torch) as t:
        save_model(model, t)
    pred = outputs["torch"].argmax(1)
    write_confusion_csv(a.confusion, data["y_val"], pred, data["classes"])
    metrics = {"accuracy": accuracy(data["y_val"], pred), "params": sum(t.numel() for t in model.parameters()),
               "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
               "parity": report, "per_class": per_class(data["y_val"], pred, data["classes"])}
    write_json(a.metrics, metrics)
    worst = max(r["max_abs_diff"] for r in report.values())
    print(f"convert_tf: {metrics['params']:,} params, val accuracy {metrics['accuracy']:.2f}%, "
          f"max |diff| {worst:.2g} across TF/ONNX/PyTorch -> {a.torch}")


if __name__ == "__main__":
    run_stage(main)
