"""Stage prune: one recipe's pruning of the YOLO pose baseline, measured straight after pruning.

    python -m stages.prune --recipe reference --model data/models/yolo_pose.pt \
        --data data/pose/pose.yaml --out outputs/yolo/prune/reference/model.pt \
        --metrics metrics/prune/reference.json

Reads `recipes.<recipe>.prune` from params.yaml. `method: l1_unstructured` zeroes weights in
place (the study's method; the zeros are saved permanently and counted as the study did);
`method: channel` removes whole channels outside the Pose head (posecompress/yolo/channel_pruning.py:
each layer's count by the rule, compensated, BatchNorm re-estimated) and, with `activation: relu`
or `hardswish`, swaps the SiLUs for activations INT8 runs cheaply. Writes an Ultralytics checkpoint
and metrics: pose/box mAP straight after pruning, params and GFLOPs before and after, for channel
pruning every layer's channels before and after (`layers`), and for unstructured pruning
`total_params`, `pruned_params`, `prune_ratio` over the pruned layers and `model_*` over the whole
model.
"""
import argparse

from posecompress.common.checks import (InputError, existing_file, load_params, param, pose_dataset_yaml, run_stage,
                                        unknown_keys)
from posecompress.common.outputs import write_json
from posecompress.yolo.models import load_pose_model
from posecompress.yolo.prune_checkpoint import prune_and_measure
from posecompress.yolo.prune_methods import PRUNE_METHODS


def read_params(path, recipe: str) -> dict:
    """recipes.<recipe>.prune, checked; only the keys its method uses are required (PRUNE_METHODS)."""
    n = f"recipes.{recipe}.prune"
    s = load_params(path, n)
    p = {"method": param(s, "method", str, f"{n}.method", choices=tuple(PRUNE_METHODS)),
         "imgsz": param(s, "imgsz", int, f"{n}.imgsz", 32, 4096),
         "batch": param(s, "batch", int, f"{n}.batch", 1, 1024)}
    p = {**p, **PRUNE_METHODS[p["method"]].params(s, n)}
    unknown_keys(s, set(p) | set(PRUNE_METHODS[p["method"]].optional), n)
    return p


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
    PRUNE_METHODS[p["method"]].check(model.model, p, a.recipe)  # before any work
    m = prune_and_measure(model, a.model, dataset, a.out, p)
    write_json(a.metrics, m)
    ratio = f", prune_ratio {m['prune_ratio']:.4f}" if "prune_ratio" in m else ""
    print(f"prune {a.recipe}: pose mAP50 {m['pose_map50']:.4f}, mAP50-95 {m['pose_map50_95']:.4f}, "
          f"{m['params_before']:,} -> {m['params']:,} params, {m['gflops_before']:.2f} -> {m['gflops']:.2f} "
          f"GFLOPs{ratio}, peak memory {m['peak_rss_mb']:.0f} MB -> {a.out}")


if __name__ == "__main__":
    run_stage(main)
