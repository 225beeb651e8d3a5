"""Stage classifier_prune: prune the converted activity classifier with one recipe.

    python -m stages.classifier_prune --recipe reference --model outputs/classifier/convert_tf/classifier.pt \
        --data data/activity --out outputs/classifier/prune/reference/model.pt \
        --metrics metrics/classifier_prune/reference.json

Reads classifier_recipes.<recipe>.prune: `method` l1_unstructured (zero the share `amount`
of the Linear/Conv weights with the smallest |w|, `scope` layer or global) or structured
(remove the share `amount` of every hidden Linear layer's neurons: smaller matrices).
Writes the study's accounting (total_params, pruned_params, prune_ratio) and the val accuracy
before and after pruning.
"""
import argparse
import copy

from posecompress.common.checks import load_params, param, run_stage
from posecompress.classifier.models import accuracy, check_fits, load_activity, load_model, predict, save_model
from posecompress.classifier.prune_methods import PRUNE_METHODS
from posecompress.classifier.pruning import accounting
from posecompress.common.outputs import atomic_path, write_json

def read_params(path, recipe: str) -> dict:
    """classifier_recipes.<recipe>.prune, checked (PRUNE_METHODS says what each method needs)."""
    name = f"classifier_recipes.{recipe}.prune"
    s = load_params(path, name)
    p = {"method": param(s, "method", str, f"{name}.method", choices=tuple(PRUNE_METHODS)),
         "amount": param(s, "amount", float, f"{name}.amount", 0.0, 1.0, high_open=True)}
    return {**p, **PRUNE_METHODS[p["method"]].params(s, name)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--model", required=True, help="converted classifier (convert_tf's .pt)")
    ap.add_argument("--data", required=True, help="activity dataset folder")
    ap.add_argument("--out", required=True, help="pruned model to write")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params, a.recipe)
    data = load_activity(a.data)
    original = load_model(a.model)
    model = copy.deepcopy(original)  # pruned in place; the original stays for the accounting
    baseline = accuracy(data["y_val"], check_fits(original, data, a.model).argmax(1))
    changes = PRUNE_METHODS[p["method"]].prune(model, p)
    pruned = accuracy(data["y_val"], predict(model, data["x_val"]).argmax(1))
    with atomic_path(a.out) as tmp:
        save_model(model, tmp)
    counts = accounting(model, original)
    write_json(a.metrics, {"baseline_accuracy": baseline, **counts, "accuracy": pruned,
                           "params_after": sum(t.numel() for t in model.parameters())})
    widths = ", ".join(f"{w0}->{w1}" for _, w0, w1 in changes)
    print(f"classifier_prune[{a.recipe}]: {p['method']} {counts['pruned_params']:,} of "
          f"{counts['total_params']:,} params ({counts['prune_ratio']:.2%}){' widths ' + widths if widths else ''}; "
          f"accuracy {baseline:.2f}% -> {pruned:.2f}%")


if __name__ == "__main__":
    run_stage(main)
