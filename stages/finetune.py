"""Stage finetune: Ultralytics' trainer on one recipe's pruned model, keeping what pruning removed.

    python -m stages.finetune --recipe reference --model outputs/yolo/prune/reference/model.pt \
        --data data/pose/pose.yaml --out outputs/yolo/finetune/reference/model.pt \
        --metrics metrics/finetune/reference.json --plots plots/finetune/reference.csv

`recipes.<recipe>.finetune` in params.yaml holds Ultralytics train arguments (`epochs`, `imgsz`
and `batch` required; any other `yolo train` argument allowed, name and value checked up front
by posecompress.yolo.train_args), plus keys of this stage's own: `frozen_bn`
(posecompress.yolo.training.FROZEN_BN), `distill` (true: Ultralytics' knowledge distillation
from the unpruned `--teacher`, weighted by its `dis` argument; the teacher is a stage input, so it
is given here, not as `distill_model`) and `distill_keypoints` (with distill: the weight of the
teacher's keypoints as targets, posecompress.yolo.distillation; 0: none). Training is posecompress.yolo.training's: the pruned
module itself, its zeros kept. The best EMA is saved in float32, as trained, and measured from the
saved file; the per-epoch training results go to the plots CSV.
"""
import argparse

from posecompress.common.checks import InputError, load_params, param, pose_dataset_yaml, run_stage, training_device
from posecompress.common.outputs import write_json
from posecompress.yolo.train_args import check_train_args
from posecompress.yolo.training import FROZEN_BN, finetune_and_measure

RESERVED = ("data", "model", "project", "name", "exist_ok", "device", "resume", "mode", "task", "save_dir",
            "distill_model")
DEFAULTS = {"workers": 2, "plots": False, "amp": False, "verbose": False}


def read_params(path, recipe: str) -> dict:
    """recipes.<recipe>.finetune as Ultralytics train arguments, keys and values checked (check_train_args)."""
    n = f"recipes.{recipe}.finetune"
    s = dict(load_params(path, n))
    frozen_bn = s.pop("frozen_bn", "keep")
    if frozen_bn not in FROZEN_BN:
        raise InputError(f"parameter {n}.frozen_bn: {frozen_bn!r} is not one of "
                         + "; ".join(f"{k} ({v})" for k, v in FROZEN_BN.items()))
    distill = param(s, "distill", bool, f"{n}.distill") if "distill" in s else False
    s.pop("distill", None)
    keypoints = param(s, "distill_keypoints", float, f"{n}.distill_keypoints", 0.0, 1e6) if "distill_keypoints" in s else 0.0
    s.pop("distill_keypoints", None)
    for key, value in (("dis", "dis" in s), ("distill_keypoints", keypoints)):
        if value and not distill:
            raise InputError(f"parameter {n}.{key}: a distillation weight, read only with distill: true")
    param(s, "epochs", int, f"{n}.epochs", 1, 10000)
    param(s, "imgsz", int, f"{n}.imgsz", 32, 4096)
    param(s, "batch", int, f"{n}.batch", 1, 1024)
    for key in RESERVED:
        if key in s:
            hint = " (distill: true learns from the baseline model)" if key == "distill_model" else ""
            raise InputError(f"parameter {n}.{key}: set by the pipeline, not a recipe parameter{hint}")
    return {**DEFAULTS, **check_train_args(s, n), "frozen_bn": frozen_bn, "distill": distill,
            "distill_keypoints": keypoints, "device": training_device(path)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True, help="a key of params.yaml's recipes")
    ap.add_argument("--model", required=True, help="pruned YOLO pose checkpoint (.pt)")
    ap.add_argument("--data", required=True, help="pose dataset YAML")
    ap.add_argument("--out", required=True, help="fine-tuned checkpoint to write")
    ap.add_argument("--metrics", required=True, help="metrics JSON to write")
    ap.add_argument("--plots", help="CSV of per-epoch training results to write")
    ap.add_argument("--teacher", help="the unpruned model a recipe with distill: true learns from")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params, a.recipe)
    dataset = pose_dataset_yaml(a.data)
    m = finetune_and_measure(a.model, dataset, a.out, a.plots, p, a.teacher)
    write_json(a.metrics, m)
    ratio = f", prune_ratio {m['prune_ratio']:.4f}" if "prune_ratio" in m else ""
    print(f"finetune {a.recipe}: pose mAP50 {m['pose_map50']:.4f}, mAP50-95 {m['pose_map50_95']:.4f}, "
          f"{m['params']:,} params, {m['gflops']:.2f} GFLOPs{ratio} -> {a.out}")


if __name__ == "__main__":
    run_stage(main)
