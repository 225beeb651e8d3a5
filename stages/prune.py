"""Stage prune: one recipe's pruning of the YOLO pose baseline, measured straight after pruning.

    python -m stages.prune --recipe reference --model data/models/yolo_pose.pt \
        --data data/pose/pose.yaml --out outputs/yolo/prune/reference/model.pt \
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
import resource

from stages.checks import InputError, existing_file, load_params, param, pose_dataset_yaml, run_stage
from stages.outputs import atomic_path, write_json
from stages.pruning import (ACTIVATIONS, CRITERIA, METHODS, SCOPES, STRUCTURED, UNSTRUCTURED, prune_channels,
                            prune_unstructured, read_checkpoint, save_checkpoint, sparsity, use_relu)
from stages.prunable import unfollowed_modules
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
                 activation=param(s, "activation", str, f"{n}.activation", choices=ACTIVATIONS),
                 keep_whole=type_names(s, "keep_whole", f"{n}.keep_whole"))
    return p


def type_names(section: dict, key: str, name: str) -> list:
    """An optional list of module type names (default: none)."""
    value = section.get(key, [])
    if not (isinstance(value, list) and all(isinstance(v, str) and v.isidentifier() for v in value)):
        raise InputError(f"parameter {name}: expected a list of module type names, got {value!r}")
    return value


def check_prunable(model, p: dict, recipe: str) -> None:
    """Refuse, before any work, a model with a module channel pruning cannot follow, naming it and
    what to do (Torch-Pruning would otherwise fail deep inside, or run out of memory)."""
    if p["method"] != STRUCTURED:
        return
    bad = unfollowed_modules(model.model, p["keep_whole"])
    if bad:
        name, kind = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(f"recipes.{recipe}.prune: channel pruning cannot follow {kind} ({name}){more}; add "
                         f"{kind} to recipes.{recipe}.prune.keep_whole to leave it unpruned, or use "
                         f"method: {UNSTRUCTURED}")


def prune_model(module, p: dict) -> dict:
    """Prune the torch module in place as the params say; returns the checkpoint's pruning record."""
    if p["method"] == UNSTRUCTURED:
        layers = prune_unstructured(module, p["amount"], p["scope"], p["include_head"])
        return {"method": UNSTRUCTURED, "layers": layers}
    try:
        prune_channels(module, p["imgsz"], p["criterion"], p["ratio"], p["max_pruning_ratio"],
                       p["round_to"], p["global_pruning"], p["keep_whole"])
    except (IndexError, RuntimeError, ValueError, MemoryError) as e:  # a block check_prunable let through
        raise InputError(f"channel pruning failed inside Torch-Pruning ({e.__class__.__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); add the block it failed on to "
                         f"keep_whole, or use method: {UNSTRUCTURED}"[:400]) from None
    swapped = use_relu(module) if p["activation"] == "relu" else 0
    return {"method": STRUCTURED, "activation": p["activation"], "relu_swapped": swapped}


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KB


def prune_and_measure(model, model_path, dataset_yaml, out, p: dict) -> dict:
    """Prune the loaded checkpoint, save it to `out` and measure the saved file as any later stage
    loads it."""
    before = {"params_before": count_params(model), "gflops_before": gflops(model, p["imgsz"])}
    record = prune_model(model.model, p)
    with atomic_path(out) as tmp:
        save_checkpoint(model.model, tmp, read_checkpoint(model_path), record)
        pruned = load_pose_model(tmp)
        size = {"params": count_params(pruned), "gflops": gflops(pruned, p["imgsz"])}
        size["gflops_reduction"] = 1 - size["gflops"] / before["gflops_before"]
        counts = sparsity(pruned.model, record["layers"]) if "layers" in record else {}
        swapped = {"relu_swapped": record["relu_swapped"]} if "relu_swapped" in record else {}
        return {**validate(pruned, dataset_yaml, p["imgsz"], p["batch"]), **counts, **before, **size, **swapped,
                "peak_rss_mb": peak_rss_mb()}


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
    if existing_file(a.model, "model").suffix != ".pt":
        raise InputError(f"model {a.model}: expected a PyTorch .pt checkpoint")
    model = load_pose_model(a.model)
    check_prunable(model, p, a.recipe)
    m = prune_and_measure(model, a.model, dataset, a.out, p)
    write_json(a.metrics, m)
    ratio = f", prune_ratio {m['prune_ratio']:.4f}" if "prune_ratio" in m else ""
    print(f"prune {a.recipe}: pose mAP50 {m['pose_map50']:.4f}, mAP50-95 {m['pose_map50_95']:.4f}, "
          f"{m['params_before']:,} -> {m['params']:,} params, {m['gflops_before']:.2f} -> {m['gflops']:.2f} "
          f"GFLOPs{ratio}, peak memory {m['peak_rss_mb']:.0f} MB -> {a.out}")


if __name__ == "__main__":
    run_stage(main)
