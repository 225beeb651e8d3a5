"""Stage prune: one recipe's pruning of the YOLO pose baseline, measured straight after pruning.

    python -m stages.prune --recipe reference --model data/models/yolo_pose.pt \
        --data data/pose/pose.yaml --out outputs/prune/reference/model.pt \
        --metrics metrics/prune/reference.json

Reads `recipes.<recipe>.prune` from params.yaml. `method: l1_unstructured` zeroes weights in
place (the study's method; the zeros are saved permanently and counted as the study did);
`method: channel` removes whole channels outside the Pose head (Torch-Pruning) and, with
`activation: relu`, swaps the SiLUs for ReLUs that INT8 runs for free. Writes an
Ultralytics checkpoint and metrics: pose/box mAP, params and GFLOPs before and after, and for
unstructured pruning `total_params`, `pruned_params`, `prune_ratio` over the pruned layers and
`model_*` over the whole model.
"""
import argparse

from stages.checks import InputError, existing_file, load_params, param, pose_dataset_yaml, run_stage
from stages.outputs import atomic_path, write_json
from stages.pruning import (ACTIVATIONS, CRITERIA, METHODS, SCOPES, STRUCTURED, UNSTRUCTURED, prune_channels,
                            prune_unstructured, read_checkpoint, save_checkpoint, sparsity, use_relu)
from stages.yolo_models import count_params, gflops, load_pose_model, validate


def read_params(path, recipe: str) -> dict:
    """recipes.<recipe>.prune, checked; only the keys its method uses are required."""
    n = f"recipes.{recipe}.prune"
    s = load_params(path, n)
    p = {"method": param(s, "method", str, f"{n}.method", choices=METHODS),
         "imgsz": param(s, "imgsz", int, f"{n}.imgsz", 32, 4096),
         "batch": param(s, "batch", int, f"{n}.batch", 1, 1024)}
    if p["method"] == UNSTRUCTURED:
        p.update(amount=param(s, "amount", float, f"{n}.amount", 0.0, 1.0, high_open=True),
                 scope=param(s, "scope", str, f"{n}.scope", choices=SCOPES),
                 include_head=param(s, "include_head", bool, f"{n}.include_head"))
    else:
        p.update(criterion=param(s, "criterion", str, f"{n}.criterion", choices=CRITERIA),
                 ratio=param(s, "ratio", float, f"{n}.ratio", 0.0, 1.0, high_open=True),
                 max_pruning_ratio=param(s, "max_pruning_ratio", float, f"{n}.max_pruning_ratio",
                                         0.0, 1.0, high_open=True),
                 round_to=param(s, "round_to", int, f"{n}.round_to", 1, 256),
                 global_pruning=param(s, "global_pruning", bool, f"{n}.global_pruning"),
                 activation=param(s, "activation", str, f"{n}.activation", choices=ACTIVATIONS))
    return p


def prune_model(module, p: dict) -> dict:
    """Prune the torch module in place as the params say; returns the checkpoint's pruning record."""
    if p["method"] == UNSTRUCTURED:
        layers = prune_unstructured(module, p["amount"], p["scope"], p["include_head"])
        return {"method": UNSTRUCTURED, "layers": layers}
    prune_channels(module, p["imgsz"], p["criterion"], p["ratio"], p["max_pruning_ratio"],
                   p["round_to"], p["global_pruning"])
    swapped = use_relu(module) if p["activation"] == "relu" else 0
    return {"method": STRUCTURED, "activation": p["activation"], "relu_swapped": swapped}


def prune_and_measure(model_path, dataset_yaml, out, p: dict) -> dict:
    """Prune the checkpoint, save it to `out` and measure the saved file as any later stage loads it."""
    if existing_file(model_path, "model").suffix != ".pt":
        raise InputError(f"model {model_path}: expected a PyTorch .pt checkpoint")
    model = load_pose_model(model_path)
    before = {"params_before": count_params(model), "gflops_before": gflops(model, p["imgsz"])}
    record = prune_model(model.model, p)
    with atomic_path(out) as tmp:
        save_checkpoint(model.model, tmp, read_checkpoint(model_path), record)
        pruned = load_pose_model(tmp)
        size = {"params": count_params(pruned), "gflops": gflops(pruned, p["imgsz"])}
        size["gflops_reduction"] = 1 - size["gflops"] / before["gflops_before"]
        counts = sparsity(pruned.model, record["layers"]) if "layers" in record else {}
        swapped = {"relu_swapped": record["relu_swapped"]} if "relu_swapped" in record else {}
        return {**validate(pruned, dataset_yaml, p["imgsz"], p["batch"]), **counts, **before, **size, **swapped}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True, help="a key of params.yaml's recipes")
    ap.add_argument("--model", required=True, help="baseline YOLO pose checkpoint (.pt)")
    ap.add_argument("--data", required=True, help="pose dataset YAML")
    ap.add_argument("--out", required=True, help="pruned checkpoint to write")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params, a.recipe)
    dataset = pose_dataset_yaml(a.data)
    m = prune_and_measure(a.model, dataset, a.out, p)
    write_json(a.metrics, m)
    ratio = f", prune_ratio {m['prune_ratio']:.4f}" if "prune_ratio" in m else ""
    print(f"prune {a.recipe}: pose mAP50 {m['pose_map50']:.4f}, mAP50-95 {m['pose_map50_95']:.4f}, "
          f"{m['params']:,} params, {m['gflops']:.2f} GFLOPs{ratio} -> {a.out}")


if __name__ == "__main__":
    run_stage(main)
