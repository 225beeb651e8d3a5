"""A checkpoint pruned by a recipe's method (prune_methods.PRUNE_METHODS), saved and measured as
any later stage loads it."""
import resource

from posecompress.common.checks import dataset_images
from posecompress.common.images import readable_images, spread, validator_tensor
from posecompress.common.outputs import atomic_path
from posecompress.yolo.checkpoint import read_checkpoint, save_checkpoint
from posecompress.yolo.models import count_params, gflops, load_pose_model, validate
from posecompress.yolo.prune_methods import PRUNE_METHODS
from posecompress.yolo.pruning import sparsity


def train_images(dataset, p: dict):
    """The train images a method calibrates on, spread over the split, as one tensor (None when the
    method reads none)."""
    import numpy as np
    import torch

    if not PRUNE_METHODS[p["method"]].needs_images:
        return None
    files = readable_images(spread(dataset_images(dataset, "train"), p["calibration_images"]),
                            f"dataset {dataset} train")
    return torch.from_numpy(np.concatenate([validator_tensor(f, (p["imgsz"], p["imgsz"])) for f in files]))


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KB


def prune_and_measure(model, model_path, dataset_yaml, out, p: dict) -> dict:
    """Prune the loaded checkpoint, save it to `out` and measure the saved file as any later stage
    loads it."""
    before = {"params_before": count_params(model), "gflops_before": gflops(model, p["imgsz"])}
    record = PRUNE_METHODS[p["method"]].prune(model.model, p, train_images(dataset_yaml, p))
    with atomic_path(out) as tmp:
        save_checkpoint(model.model, tmp, read_checkpoint(model_path), record)
        pruned = load_pose_model(tmp)
        size = {"params": count_params(pruned), "gflops": gflops(pruned, p["imgsz"])}
        size["gflops_reduction"] = 1 - size["gflops"] / before["gflops_before"]
        counts = sparsity(pruned.model, record["layers"]) if "layers" in record else {}
        swapped = {k: v for k, v in record.items() if k.endswith("_swapped")}
        layers = {"layers": record["channels"]} if "channels" in record else {}
        return {**validate(pruned, dataset_yaml, p["imgsz"], p["batch"]), **counts, **before, **size, **swapped,
                "peak_rss_mb": peak_rss_mb(), **layers}
