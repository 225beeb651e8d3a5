"""What each part of channel pruning keeps: pose mAP straight after pruning, with and without each.

    python -m tools.prune_ablation --model data/models/yolo11n_pose.pt --budgets 0.10 0.25

For each GFLOPs budget, prunes the model (activation kept, round_to 1, max_pruning_ratio 0.6)
with uniform allocation (the ratio that removes the budget), then with sensitivity allocation,
each with and without compensation and adaptive BatchNorm, then with the head pruned too, and
validates it as the prune stage does (--variants picks rows). Prints a Markdown table; writes it as JSON with --out.
"""
import argparse
import json

from posecompress.common.checks import pose_dataset_yaml
from posecompress.yolo import channel_pruning as cp
from posecompress.yolo.models import gflops, load_pose_model, validate

VARIANTS = (  # (label, allocation, criterion, compensate, adapt_bn, prune_head)
    ("uniform, l2 (Torch-Pruning's default criterion)", "uniform", "l2", False, False, False),
    ("uniform, l2, compensated", "uniform", "l2", True, False, False),
    ("uniform, l2, compensated, adaptive BN", "uniform", "l2", True, True, False),
    ("uniform, variance, compensated, adaptive BN", "uniform", "variance", True, True, False),
    ("sensitivity, variance", "sensitivity", "variance", False, False, False),
    ("sensitivity, variance, compensated", "sensitivity", "variance", True, False, False),
    ("sensitivity, variance, adaptive BN", "sensitivity", "variance", False, True, False),
    ("sensitivity, variance, compensated, adaptive BN (default)", "sensitivity", "variance", True, True, False),
    ("the same, head pruned too (prune_head)", "sensitivity", "variance", True, True, True),
)


def uniform_ratio(model_path, imgsz: int, budget: float, max_ratio: float) -> float:
    """The uniform ratio whose plan removes `budget` of the convolutions' work (bisection)."""
    from posecompress.yolo.prunable import whole_blocks
    from posecompress.yolo.pruning import rewrite_c2f

    model = load_pose_model(model_path).model.eval()
    rewrite_c2f(model)
    layout = cp.Layout(model, imgsz, whole_blocks(model))
    total, low, high = layout.macs(), 0.0, max_ratio
    for _ in range(30):
        mid = (low + high) / 2
        if 1 - layout.macs(cp.uniform_plan(layout, mid, max_ratio, 1)) / total < budget:
            low = mid
        else:
            high = mid
    return high


def main() -> None:
    import numpy as np
    import torch

    from posecompress.common.checks import dataset_images
    from posecompress.common.images import spread, validator_tensor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="data/pose/pose.yaml")
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.10, 0.25])
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--images", type=int, default=256, help="calibration images")
    ap.add_argument("--variants", type=int, nargs="+", help="rows of VARIANTS to run (0-based; default: all)")
    ap.add_argument("--out", help="JSON file to write")
    a = ap.parse_args()
    chosen = [VARIANTS[i] for i in a.variants] if a.variants else VARIANTS
    data = pose_dataset_yaml(a.data)
    files = spread(dataset_images(data, "train"), a.images)
    images = torch.from_numpy(np.concatenate([validator_tensor(f, (a.imgsz, a.imgsz)) for f in files]))
    base = load_pose_model(a.model)
    rows = {"baseline": {"gflops_reduction": 0.0, **validate(base, data, a.imgsz, 16)}}
    before = gflops(base, a.imgsz)
    for budget in a.budgets:
        ratio = uniform_ratio(a.model, a.imgsz, budget, 0.6)
        for label, allocation, criterion, compensate, adapt_bn, prune_head in chosen:
            yolo = load_pose_model(a.model)
            p = {"criterion": criterion, "allocation": allocation, "ratio": ratio, "gflops_reduction": budget,
                 "max_pruning_ratio": 0.6, "round_to": 1, "compensate": compensate, "keep_whole": [],
                 "imgsz": a.imgsz, "batch": 16, "prune_head": prune_head}
            cp.prune_channels(yolo.model, images, p)
            if adapt_bn:
                cp.adapt_batchnorm(yolo.model, images, 16)
            cut = 1 - gflops(yolo, a.imgsz) / before
            rows[f"{budget:.2f} {label}"] = {"gflops_reduction": cut, **validate(yolo, data, a.imgsz, 16)}
            r = rows[f"{budget:.2f} {label}"]
            print(f"| {budget:.0%} | {label} | {cut:.1%} | {r['pose_map50_95']:.3f} | {r['pose_map50']:.3f} |",
                  flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
