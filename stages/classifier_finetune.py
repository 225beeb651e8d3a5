"""Stage classifier_finetune: fine-tune a pruned activity classifier, export it, compare it.

    python -m stages.classifier_finetune --recipe reference --original outputs/classifier/convert_tf/classifier.pt \
        --model outputs/classifier/prune/reference/model.pt --data data/activity \
        --out outputs/classifier/finetune/reference/model.pt --onnx outputs/classifier/finetune/reference/model.onnx \
        --metrics metrics/classifier_finetune/reference.json \
        --confusion plots/classifier_finetune/reference/confusion.csv \
        --figure plots/classifier_finetune/reference/confusion.png

Reads classifier_recipes.<recipe>.finetune (Adam `lr`, `epochs`, `batch`, `seed`). Zeroed
weights stay zero (masks), so the pruning ratio after fine-tuning equals the one before.
Writes the accuracy of the original, pruned and fine-tuned models, the pruning accounting
before and after, per-class precision / recall of the final model, its confusion data
(actual,predicted class names), one image of the original's and the final model's confusion
matrices side by side, and the final model as ONNX (at convert_tf.opset, as the converted one).
"""
import argparse

from posecompress.classifier.models import (accuracy, check_fits, confusion, export_onnx, load_activity, load_model,
                                            outputs_are_probabilities, per_class, predict, save_model,
                                            write_confusion_csv)
from posecompress.classifier.pruning import accounting, finetune
from posecompress.common.checks import load_params, param, run_stage, training_device
from posecompress.common.outputs import atomic_path, write_json
from posecompress.report.figures import confusion_figure


def read_params(path, recipe: str) -> dict:
    """classifier_recipes.<recipe>.finetune, checked."""
    name = f"classifier_recipes.{recipe}.finetune"
    s = load_params(path, name)
    return {"lr": param(s, "lr", float, f"{name}.lr", 0.0, 1.0, high_open=True),
            "epochs": param(s, "epochs", int, f"{name}.epochs", 0, 1000),
            "batch": param(s, "batch", int, f"{name}.batch", 1, 65536),
            "seed": param(s, "seed", int, f"{name}.seed", 0), "device": training_device(path),
            "opset": param(load_params(path, "convert_tf"), "opset", int, "convert_tf.opset", 13, 21)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--original", required=True, help="converted classifier (convert_tf's .pt)")
    ap.add_argument("--model", required=True, help="pruned classifier")
    ap.add_argument("--data", required=True, help="activity dataset folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--confusion", required=True, help="final model's confusion data (CSV) to write")
    ap.add_argument("--figure", required=True, help="side-by-side confusion matrices (PNG) to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params, a.recipe)
    data = load_activity(a.data)
    original, model = load_model(a.original), load_model(a.model)
    y, classes = data["y_val"], data["classes"]
    scores = check_fits(original, data, a.original)
    pred_original = scores.argmax(1)
    pred_pruned = check_fits(model, data, a.model).argmax(1)
    before = accounting(model, original)
    finetune(model, data["x_train"], data["y_train"], p["lr"], p["epochs"], p["batch"], p["seed"],
             outputs_are_probabilities(scores), p["device"])
    pred = predict(model, data["x_val"]).argmax(1)
    after = accounting(model, original)
    with atomic_path(a.out) as tmp:
        save_model(model, tmp)
    export_onnx(model, a.onnx, data["x_val"].shape[1], p["opset"])
    write_confusion_csv(a.confusion, y, pred, classes)
    confusion_figure(a.figure, {"original": confusion(y, pred_original, len(classes)),
                                f"pruned + fine-tuned ({a.recipe})": confusion(y, pred, len(classes))}, classes)
    metrics = {"device": p["device"], "baseline_accuracy": accuracy(y, pred_original),
               "pruned_accuracy": accuracy(y, pred_pruned),
               "accuracy": accuracy(y, pred), "accuracy_change_points": accuracy(y, pred) - accuracy(y, pred_original),
               "prune_ratio_before": before["prune_ratio"], **after,
               "params": sum(t.numel() for t in model.parameters()),
               "per_class": per_class(y, pred, classes)}
    write_json(a.metrics, metrics)
    print(f"classifier_finetune[{a.recipe}]: accuracy {metrics['baseline_accuracy']:.2f}% (original) -> "
          f"{metrics['pruned_accuracy']:.2f}% (pruned) -> {metrics['accuracy']:.2f}% (fine-tuned); "
          f"prune ratio {before['prune_ratio']:.4%} -> {after['prune_ratio']:.4%}")


if __name__ == "__main__":
    run_stage(main)
