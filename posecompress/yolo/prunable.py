"""Which modules of a YOLO model structured (channel) pruning can follow, and which it leaves whole.

Torch-Pruning traces a dependency graph through every module; where it cannot follow a module's
forward it fails deep inside, or (on attention) runs out of memory. So a model is checked against
the types it is known to follow on YOLOv8, YOLO11 and YOLO26 pose models before any work, and
the blocks it must not cut into are handed to it as ignored layers.
"""
from torch import nn

from posecompress.yolo.checkpoint import C2fTwoConv

# Blocks left whole by channel pruning: multi-head attention reshapes its channels into
# (heads, key, value) groups, which Torch-Pruning's graph cannot keep consistent (on YOLO11's C2PSA
# it grew past 22 GB). Their inner channels and the channels their residuals tie them to stay.
ATTENTION_BLOCKS = ("C2PSA", "PSA", "PSABlock", "Attention", "A2C2f", "ABlock", "AAttn")


def _followed_types() -> tuple:
    """Module types whose forward Torch-Pruning's dependency graph follows correctly (verified on
    YOLOv8, YOLO11 and YOLO26 pose models); anything else must be left whole or refused."""
    from ultralytics.nn.modules import C2f, C3, SPP, SPPF, Bottleneck, Concat, Conv, DWConv

    # C2f-shaped blocks count: rewrite_c2f turns them into C2fTwoConv before the graph is built
    return (Conv, DWConv, Bottleneck, C2f, C3, SPP, SPPF, Concat, C2fTwoConv, nn.Conv2d, nn.BatchNorm2d,
            nn.Upsample, nn.MaxPool2d, nn.Identity, nn.Sequential, nn.ModuleList, nn.Dropout,
            nn.SiLU, nn.ReLU, nn.LeakyReLU, nn.Hardswish, nn.Sigmoid, nn.GELU)


def _follows(module, followed: tuple) -> bool:
    """True when the module is a followed type that keeps that type's forward: a subclass that only
    swaps inner blocks (C3k2, C3k, C3TR) is followed and its inner blocks are checked one by one;
    one that overrides forward is not."""
    return any(isinstance(module, t) and type(module).forward is t.forward for t in followed)


def unfollowed_modules(model, keep_whole=()) -> list:
    """(name, type name) of the modules outside the head and the kept-whole blocks that channel
    pruning cannot follow; empty when the model can be pruned."""
    from ultralytics.nn.modules import Detect

    whole = set(ATTENTION_BLOCKS) | set(keep_whole)
    followed, skipped, found = _followed_types(), set(), []
    for name, m in model.named_modules():
        if any(name.startswith(f"{s}.") for s in skipped) or not name:
            continue
        if isinstance(m, Detect) or type(m).__name__ in whole:
            skipped.add(name)
        elif not _follows(m, followed):
            found.append((name, type(m).__name__))
            skipped.add(name)
    return found


def head_outputs(head) -> list:
    """What head pruning leaves whole in a Detect head (Pose, Pose26): its output convolutions
    (the bare nn.Conv2d at the end of each box, class and keypoint branch, whose channels are the
    predictions), the DFL and every module that is not a convolution (Pose26's flow model)."""
    inner = {m.conv for m in head.modules() if isinstance(getattr(m, "conv", None), nn.Conv2d) and hasattr(m, "bn")}
    outputs = [m for m in head.modules() if isinstance(m, nn.Conv2d) and m not in inner]
    others = [m for m in head.children() if not isinstance(m, (nn.ModuleList, nn.Sequential))]
    return outputs + others


def training_only_readers(model) -> dict:
    """conv -> the training-only conv reading the same features (Pose26: cv4_sigma[i] reads what
    cv4_kpts[i] reads). The dependency graph is traced in eval mode, which never runs them, so their
    input channels must follow their twin's when the head is pruned."""
    from ultralytics.nn.modules import Detect

    pairs = {}
    for head in (m for m in model.modules() if isinstance(m, Detect)):
        for kpts, sigma in (("cv4_kpts", "cv4_sigma"), ("one2one_cv4_kpts", "one2one_cv4_sigma")):
            if getattr(head, kpts, None) is not None and getattr(head, sigma, None) is not None:
                pairs.update(zip(getattr(head, kpts), getattr(head, sigma)))
    return pairs


def whole_blocks(model, keep_whole=(), prune_head: bool = False) -> list:
    """The modules channel pruning leaves whole: the head (Detect and its subclasses: Pose,
    Pose26), or with `prune_head` only its outputs (head_outputs), and every attention block or
    `keep_whole` type."""
    from ultralytics.nn.modules import Detect

    whole = set(ATTENTION_BLOCKS) | set(keep_whole)
    heads = [m for m in model.modules() if isinstance(m, Detect)]
    kept = [s for h in heads for s in head_outputs(h)] if prune_head else heads
    return kept + [m for m in model.modules() if type(m).__name__ in whole]
