"""Pruning YOLO pose models: the study's L1 unstructured pruning, and structured channel pruning.

Unstructured pruning (`torch.nn.utils.prune`) zeroes single weights inside dense tensors: the
model keeps its shape, size and speed, and the study's accounting counts the zeros. Structured
pruning (Torch-Pruning's dependency graph) removes whole channels, so the convolutions really
shrink. Both save Ultralytics-style checkpoints that `YOLO(path)`, its validator and exporter
accept and `stages.finetune` trains; their pruning record tells fine-tuning which layers to keep
sparse.
"""
import torch
from torch import nn
from torch.nn.utils import prune

import posecompress  # noqa: F401  (Ultralytics offline before it is imported)
# Checkpoints written before C2fTwoConv moved to yolo/checkpoint.py pickled it under this module's
# name: importing it here keeps them loading.
from posecompress.yolo.checkpoint import C2fTwoConv

UNSTRUCTURED, STRUCTURED = "l1_unstructured", "channel"
SCOPES = ("layer", "global")  # each layer loses `amount` of its weights, or the smallest `amount` overall
# channel importance: Torch-Pruning's, or "variance" (how much the channel's output varies on train
# images: what compensation cannot keep)
CRITERIA = ("variance", "l1", "l2", "bn_scale", "lamp", "fpgm", "random")
# keep the model's SiLU, or swap it for ReLU or Hardswish (see swap_activation)
ACTIVATIONS = {"silu": None, "relu": nn.ReLU, "hardswish": nn.Hardswish}


def _is_head(name: str, model) -> bool:
    return name.startswith(f"model.{len(model.model) - 1}.")


def prunable_convs(model, include_head: bool) -> dict:
    """{name: Conv2d} that unstructured pruning acts on.

    The DFL convolution is never pruned: its weights are the fixed bin values 0..15 that decode
    box distances (Ultralytics never trains it), not learned weights.
    """
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and not name.endswith(".dfl.conv")
            and (include_head or not _is_head(name, model))}


def prune_unstructured(model, amount: float, scope: str, include_head: bool) -> list:
    """Zero the smallest-|w| fraction `amount` of the chosen convolution weights, permanently.

    Returns the pruned layers' names (the masks are folded into the weights by prune.remove).
    """
    convs = prunable_convs(model, include_head)
    if scope == "global":
        prune.global_unstructured([(m, "weight") for m in convs.values()],
                                  pruning_method=prune.L1Unstructured, amount=amount)
    else:
        for m in convs.values():
            prune.l1_unstructured(m, "weight", amount=amount)
    for m in convs.values():
        prune.remove(m, "weight")
    return list(convs)


def sparsity(model, layers) -> dict:
    """The study's accounting: zeros in the pruned layers' weights, over those weights and over
    all the model's parameters (the study's 727,606 of 3,263,104)."""
    modules = dict(model.named_modules())
    weights = [modules[n].weight for n in layers]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    model_total = sum(p.numel() for p in model.parameters())
    return {"total_params": total, "pruned_params": zeros, "prune_ratio": zeros / total if total else 0.0,
            "model_params": model_total, "model_prune_ratio": zeros / model_total}


@torch.no_grad()
def apply_masks(model, layers, masks_by_name: dict) -> None:
    """Re-zero the pruned weights of `model` (a module with the same layer names)."""
    modules = dict(model.named_modules())
    for n in layers:
        modules[n].weight.mul_(masks_by_name[n])


def rewrite_c2f(model) -> int:
    """Replace every C2f-shaped block by its two-convolution form; returns how many.

    "C2f-shaped" is any module running C2f's own forward: C2f itself and its subclasses that only
    change the inner blocks (YOLO11/YOLO26's C3k2, C2fPSA, ...). Matching the type alone missed
    C3k2, and Torch-Pruning then ran out of memory on its `chunk`.
    """
    from ultralytics.nn.modules import C2f

    count = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, C2f) and type(child).forward is C2f.forward:
                setattr(parent, name, C2fTwoConv(child))
                count += 1
    return count


def importance(criterion: str):
    """Torch-Pruning's importance estimator for a criterion of CRITERIA (all but "variance")."""
    import torch_pruning as tp

    imp = tp.importance
    return {"l1": lambda: imp.MagnitudeImportance(p=1), "l2": lambda: imp.MagnitudeImportance(p=2),
            "bn_scale": imp.BNScaleImportance, "lamp": imp.LAMPImportance,
            "fpgm": imp.FPGMImportance, "random": imp.RandomImportance}[criterion]()


def swap_activation(model, activation: str) -> int:
    """Replace the SiLU of every convolution block by `activation` (ACTIVATIONS), in place;
    returns how many (0 for silu).

    Why: INT8 runtimes fold ReLU into the convolution before it (onnxruntime clips through the
    output's zero point), while SiLU costs an exponential per value: onnxruntime runs it as two
    more passes (QLinearSigmoid + QLinearMul, ~15% of INT8 time here), OpenVINO as a slower fused
    step (yolo11n-pose pruned 30%: 3.4x with SiLU, 4.6x with ReLU). ReLU's price is accuracy: a
    pretrained model swapped to ReLU scores 0, so fine-tuning is a retrain. Hardswish,
    x * relu6(x + 3) / 6, has SiLU's shape without the exponential: yolo11n-pose swapped and
    not retrained keeps pose mAP50-95 0.583 of 0.684 and runs at 4.2x on OpenVINO, which fuses
    it too. onnxruntime does not quantize it (it stays float there): use it with mode openvino.
    """
    make = ACTIVATIONS[activation]
    if make is None:
        return 0
    count = 0
    for m in model.modules():
        if isinstance(getattr(m, "act", None), nn.SiLU):
            m.act = make()
            count += 1
    return count
