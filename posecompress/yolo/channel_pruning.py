"""Structured channel pruning that does what its parameters say and keeps what the model knows.

Torch-Pruning's dependency graph finds the groups of coupled channels (a convolution's outputs and
every layer that reads them, residual adds and concatenations followed); this module decides how
many channels each group loses and which, then removes them so as to keep the model's function:

- the rule (`channels_kept`): a layer of C channels keeps C x (1 - ratio) rounded to the *nearest*
  multiple of round_to, never fewer than C x (1 - max_pruning_ratio) allows, so a larger ratio
  never cuts less. Torch-Pruning's own rounding keeps the count rounded *down* and skips a layer
  where that reaches zero: `ratio: 0.3, round_to: 16` removed 50% from most yolov8n-pose layers
  and none from some.
- allocation: `uniform` gives every layer the same ratio; `sensitivity` spends a GFLOPs budget
  where it hurts least, from each layer's measured distortion of the head's inputs when it alone
  is pruned (a pretrained model loses most of its accuracy in a few sensitive layers: the stem and
  the first C2f/C3k2 blocks).
- compensation: a removed channel's output is not zero but a constant plus what varies around it
  (its BatchNorm shift through the activation); the mean each reader saw is folded into that
  reader's BatchNorm mean (or bias), so only the variation is lost.
- adaptive BatchNorm: every BatchNorm's running statistics re-estimated on train images after
  pruning (EagleEye), as the pruned layers no longer produce the distributions they were fitted to.
"""
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from posecompress.yolo.distillation import head_branches

ALLOCATIONS = ("uniform", "sensitivity")
# fractions of max_pruning_ratio at which each layer's sensitivity is measured
SENSITIVITY_LEVELS = 6


class PruningError(ValueError):
    """A setting the pruner cannot honour on this model."""


def channels_kept(channels: int, ratio: float, max_ratio: float, round_to: int) -> int:
    """How many of a layer's `channels` stay when it loses `ratio` of them.

    The kept count is the multiple of round_to nearest C x (1 - ratio), at least the smallest
    multiple that keeps C x (1 - max_ratio). A layer narrower than round_to, or whose only allowed
    counts would remove past max_ratio, stays whole.
    """
    if round_to <= 1:
        floor = int(np.ceil(channels * (1 - max_ratio) - 1e-9))
        return max(1, floor, int(round(channels * (1 - ratio))))
    floor = int(np.ceil(channels * (1 - max_ratio) / round_to - 1e-9)) * round_to
    if floor >= channels or channels < round_to:
        return channels
    kept = int(round(channels * (1 - ratio) / round_to)) * round_to
    return min(channels, max(round_to, floor, kept))


class Group(NamedTuple):
    """One set of coupled output channels: a convolution's and those tied to it."""
    name: str               # the root convolution's module name
    root: nn.Conv2d
    channels: int
    out_convs: list         # (conv, index array into its output channels, one per root channel)


class Layout:
    """The prunable groups of a model and what each conv costs, at one input size."""

    def __init__(self, model: nn.Module, imgsz: int, ignored: list):
        import torch_pruning as tp

        self.model = model
        example = torch.zeros(1, 3, imgsz, imgsz)
        for p in model.parameters():  # the dependency graph is traced through autograd
            p.requires_grad_(True)
        self.graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        for p in model.parameters():
            p.requires_grad_(False)
        names = {m: n for n, m in model.named_modules()}
        ignored = [s for m in ignored for s in m.modules()]
        self.groups = []
        for g in self.graph.get_all_groups(ignored_layers=ignored, root_module_types=(nn.Conv2d,)):
            root = g[0].dep.target.module
            outs = []
            for item in g:
                m = item.dep.target.module
                if isinstance(m, nn.Conv2d) and self.graph.is_out_channel_pruning_fn(item.dep.handler):
                    idx = np.zeros(len(g[0].idxs), dtype=np.int64)
                    idx[np.asarray(item.root_idxs)] = np.asarray(item.idxs)
                    outs.append((m, idx))
            self.groups.append(Group(names[root], root, len(g[0].idxs), outs))
        # group name -> the (non-depthwise) convolutions reading its channels
        self.readers = {g.name: [item.dep.target.module for item in self.full_group(g)
                                 if isinstance(item.dep.target.module, nn.Conv2d)
                                 and self.graph.is_in_channel_pruning_fn(item.dep.handler)
                                 and not _depthwise(item.dep.target.module)] for g in self.groups}
        self.hw = _conv_output_sizes(model, example)

    def full_group(self, g: Group):
        """Torch-Pruning's group of every channel of g, as the model is now."""
        return self.graph.get_pruning_group(g.root, _out_fn(self.graph, g.root), list(range(g.channels)))

    def macs(self, removed: dict = None) -> float:
        """Multiply-accumulates of every convolution with `removed` channels per group (name -> n)."""
        removed = removed or {}
        cut_out, cut_in = {}, {}
        for g in self.groups:
            n = removed.get(g.name, 0)
            if n:
                for conv, _ in g.out_convs:
                    cut_out[conv] = cut_out.get(conv, 0) + n
                for conv in self.readers[g.name]:
                    cut_in[conv] = cut_in.get(conv, 0) + n
        total = 0.0
        for conv, hw in self.hw.items():
            k = conv.kernel_size[0] * conv.kernel_size[1] * hw
            out = conv.out_channels - cut_out.get(conv, 0)
            if conv.groups > 1 and conv.groups == conv.in_channels:  # depthwise: one input per output
                total += out * k
            else:
                total += (conv.in_channels - cut_in.get(conv, 0)) * out / conv.groups * k
        return total


def _depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _out_fn(graph, module):
    return graph.get_pruner_of_module(module).prune_out_channels


def _conv_output_sizes(model, example) -> dict:
    """conv -> H x W of its output for `example`."""
    sizes, hooks = {}, []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda mod, i, o: sizes.__setitem__(mod, o.shape[2] * o.shape[3])))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return sizes


def _block_of(model) -> dict:
    """conv -> the module whose output is that conv's after BatchNorm and activation (Ultralytics'
    Conv), or the conv itself."""
    blocks = {}
    for m in model.modules():
        conv = getattr(m, "conv", None)
        if isinstance(conv, nn.Conv2d) and hasattr(m, "bn") and hasattr(m, "act"):
            blocks[conv] = m
    return {c: blocks.get(c, c) for c in model.modules() if isinstance(c, nn.Conv2d)}


class Statistics(NamedTuple):
    in_mean: dict    # conv -> mean of each input channel
    out_mean: dict   # conv -> mean of each output channel after its BatchNorm and activation
    out_var: dict    # conv -> variance of the same


@torch.no_grad()
def channel_statistics(model, images: torch.Tensor, batch: int) -> Statistics:
    """Per-channel means (and output variances) of every convolution over the images."""
    blocks = _block_of(model)
    sums = {k: {} for k in ("in", "out", "sq")}
    counts = {"in": {}, "out": {}}

    def add(kind, key, x):
        x = x.double()
        sums[kind][key] = sums[kind].get(key, 0) + x.sum((0, 2, 3))
        if kind == "out":
            sums["sq"][key] = sums["sq"].get(key, 0) + (x * x).sum((0, 2, 3))
        counts[kind][key] = counts[kind].get(key, 0) + x.shape[0] * x.shape[2] * x.shape[3]

    hooks = []
    for conv, block in blocks.items():
        hooks.append(conv.register_forward_pre_hook(lambda m, i: add("in", m, i[0])))
        hooks.append(block.register_forward_hook(lambda m, i, o, c=conv: add("out", c, o)))
    try:
        for start in range(0, len(images), batch):
            model(images[start:start + batch])
    finally:
        for h in hooks:
            h.remove()
    in_mean = {c: (s / counts["in"][c]).float() for c, s in sums["in"].items()}
    out_mean = {c: s / counts["out"][c] for c, s in sums["out"].items()}
    out_var = {c: (sums["sq"][c] / counts["out"][c] - out_mean[c] ** 2).clamp_min(0).float() for c in out_mean}
    return Statistics(in_mean, {c: m.float() for c, m in out_mean.items()}, out_var)


def channel_order(layout: Layout, criterion: str, stats: Statistics) -> dict:
    """group name -> its channels, least important first."""
    if criterion == "variance":  # what compensation cannot keep: how much the channel varies
        order = {}
        for g in layout.groups:
            score = np.zeros(g.channels)
            for conv, idx in g.out_convs:
                score += stats.out_var[conv].numpy()[idx]
            order[g.name] = np.argsort(score, kind="stable")
        return order
    from posecompress.yolo.pruning import importance

    imp = importance(criterion)
    order = {}
    for g in layout.groups:
        score = imp(layout.full_group(g))
        score = np.zeros(g.channels) if score is None else score.detach().cpu().double().numpy()
        order[g.name] = np.argsort(score, kind="stable")
    return order


@torch.no_grad()
def _head_seen(model, images: torch.Tensor, batch: int, outputs: bool) -> list:
    """What the model's last module (the head) reads, for each batch of images; `outputs`: its raw
    predictions instead (_branches), what a pruned head is measured on, as its own inner channels
    leave its inputs unchanged."""
    head, seen = model.model[-1], []
    hook = (head.register_forward_hook(lambda m, i, o: seen.append(_branches(o))) if outputs else
            head.register_forward_pre_hook(lambda m, i: seen.append([t.clone() for t in i[0]])))
    try:
        for start in range(0, len(images), batch):
            model(images[start:start + batch])
    finally:
        hook.remove()
    return seen


def _branches(output) -> list:
    """Copies of the head's raw prediction dicts (boxes, scores, keypoints; Pose26 has two
    branches) from its eval-mode output, without the features they were computed from."""
    return [{k: v.clone() for k, v in b.items() if k != "feats"} for b in head_branches(output)]


def _relative_error(p: torch.Tensor, r: torch.Tensor, weight=None) -> float:
    w = 1.0 if weight is None else weight
    return float((w * (p - r) ** 2).sum() / (w * r ** 2).sum().clamp_min(1e-12))


def _prediction_error(pruned: list, reference: list) -> float:
    """Relative squared error of one batch's predictions: class probabilities over every anchor,
    boxes and keypoints weighted by how confident the unpruned model is that an anchor holds a
    person (the background's boxes and keypoints are never used)."""
    err = 0.0
    for p, r in zip(pruned, reference):
        prob = r["scores"].sigmoid()
        weight = prob.amax(1, keepdim=True)
        err += _relative_error(p["scores"].sigmoid(), prob)
        err += sum(_relative_error(p[k], r[k], weight) for k in r if k != "scores")
    return err


def _input_error(pruned: list, reference: list) -> float:
    return sum(_relative_error(p, r) for p, r in zip(pruned, reference))


@torch.no_grad()
def sensitivity(layout: Layout, order: dict, stats: Statistics, images: torch.Tensor, batch: int,
                levels: dict, at_outputs: bool = False) -> dict:
    """group name -> {channels removed: distortion}: the head inputs' (`at_outputs`: the head's
    predictions') relative squared error when that group alone loses its least important channels,
    replaced by their means (which is what pruning with compensation leaves)."""
    error = _prediction_error if at_outputs else _input_error
    reference = _head_seen(layout.model, images, batch, at_outputs)
    blocks = _block_of(layout.model)
    result = {}
    for g in layout.groups:
        result[g.name] = {0: 0.0}
        for n in levels[g.name]:
            removed = order[g.name][:n]
            hooks = []
            for conv, idx in g.out_convs:
                ch = torch.as_tensor(idx[removed])
                mean = stats.out_mean[conv][ch].view(1, -1, 1, 1)

                def replace(m, i, o, ch=ch, mean=mean):
                    o = o.clone()
                    o[:, ch] = mean
                    return o
                hooks.append(blocks[conv].register_forward_hook(replace))
            try:
                pruned = _head_seen(layout.model, images, batch, at_outputs)
            finally:
                for h in hooks:
                    h.remove()
            result[g.name][n] = sum(error(p, r) for p, r in zip(pruned, reference)) / len(reference)
    return result


def uniform_plan(layout: Layout, ratio: float, max_ratio: float, round_to: int) -> dict:
    """group name -> channels removed: every group loses `ratio` by the rule of channels_kept."""
    return {g.name: g.channels - channels_kept(g.channels, ratio, max_ratio, round_to) for g in layout.groups}


def allowed_cuts(layout: Layout, max_ratio: float, round_to: int) -> dict:
    """group name -> the channel counts it may lose, at most SENSITIVITY_LEVELS, ascending."""
    cuts = {}
    for g in layout.groups:
        steps = {g.channels - channels_kept(g.channels, max_ratio * k / SENSITIVITY_LEVELS, max_ratio, round_to)
                 for k in range(1, SENSITIVITY_LEVELS + 1)}
        cuts[g.name] = sorted(n for n in steps if n > 0)
    return cuts


def sensitivity_plan(layout: Layout, distortion: dict, gflops_reduction: float) -> dict:
    """group name -> channels removed: greedy steps, each the one that adds the least distortion
    for the multiply-accumulates it removes, until `gflops_reduction` of them is gone."""
    total = layout.macs()
    plan = {g.name: 0 for g in layout.groups}
    current = total
    while current > total * (1 - gflops_reduction):
        best = None
        for name, curve in distortion.items():
            steps = [n for n in curve if n > plan[name]]
            if not steps:
                continue
            n = min(steps)
            saved = current - layout.macs({**plan, name: n})
            if saved <= 0:
                continue
            cost = (curve[n] - curve[plan[name]]) / saved
            if best is None or cost < best[0]:
                best = (cost, name, n)
        if best is None:
            raise PruningError(
                f"gflops_reduction {gflops_reduction:g} cannot be reached within max_pruning_ratio: "
                f"every layer at its limit removes {1 - current / total:.1%}")
        plan[best[1]] = best[2]
        current = layout.macs(plan)
    return plan


@torch.no_grad()
def prune_with_compensation(layout: Layout, plan: dict, order: dict, stats: Statistics, compensate: bool,
                            twins: dict = None) -> None:
    """Remove plan[name] channels of each group (least important first), folding each removed
    channel's mean, as every reader saw it, into the reader's BatchNorm mean or bias. `twins`:
    reader conv -> a conv the traced graph does not hold that reads the same features, pruned alike
    (prunable.training_only_readers)."""
    import torch_pruning as tp

    graph, in_mean, twins = layout.graph, dict(stats.in_mean), twins or {}
    bn_after = {m.conv: m.bn for m in layout.model.modules()
                if isinstance(getattr(m, "conv", None), nn.Conv2d) and isinstance(getattr(m, "bn", None), nn.BatchNorm2d)}
    for g in layout.groups:
        n = plan.get(g.name, 0)
        if not n:
            continue
        group = graph.get_pruning_group(g.root, _out_fn(graph, g.root), order[g.name][:n].tolist())
        for item in group:
            conv = item.dep.target.module
            if not (isinstance(conv, nn.Conv2d) and graph.is_in_channel_pruning_fn(item.dep.handler)):
                continue
            idxs = torch.as_tensor(item.idxs)
            for reader in filter(None, (conv, twins.get(conv))):
                if compensate and not _depthwise(reader) and conv in in_mean:
                    w = reader.weight[:, idxs].sum((2, 3))  # (out, removed): a constant input adds w @ mean
                    delta = w @ in_mean[conv][idxs].to(w.dtype)
                    if reader in bn_after:
                        bn_after[reader].running_mean.sub_(delta)
                    elif reader.bias is not None:
                        reader.bias.add_(delta)
                    else:
                        reader.bias = nn.Parameter(delta.clone(), requires_grad=False)
                if reader is not conv:
                    tp.prune_conv_in_channels(reader, item.idxs)
            if conv in in_mean:
                keep = torch.ones(len(in_mean[conv]), dtype=torch.bool)
                keep[idxs] = False
                in_mean[conv] = in_mean[conv][keep]
        group.prune()


@torch.no_grad()
def adapt_batchnorm(model, images: torch.Tensor, batch: int) -> int:
    """Re-estimate every BatchNorm's running mean and variance on the images (a cumulative average,
    no gradient, every other layer in eval mode); weights and biases are untouched. Returns how
    many BatchNorms were re-estimated."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(bn.momentum, bn.training) for bn in bns]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over every batch
        bn.train()
    try:
        for start in range(0, len(images), batch):
            model(images[start:start + batch])
    finally:
        for bn, (momentum, training) in zip(bns, saved):
            bn.momentum = momentum
            bn.train(training)
    return len(bns)


def layer_record(layout: Layout, plan: dict) -> dict:
    """group name -> channels before and after and the share of the model's convolution work its
    own convolutions held before pruning."""
    total = layout.macs()
    record = {}
    for g in layout.groups:
        own = sum(layout.hw[c] * c.kernel_size[0] * c.kernel_size[1] * c.in_channels * c.out_channels / c.groups
                  for c, _ in g.out_convs)
        record[g.name] = {"channels_before": g.channels, "channels_after": g.channels - plan.get(g.name, 0),
                          "gflops_share": own / total}
    return record


# train images the sensitivity of each layer is measured on (the first of the calibration images: one batch)
SENSITIVITY_IMAGES = 16


def prune_channels(model, images: torch.Tensor, p: dict) -> dict:
    """Prune `model` in place by recipe parameters `p` (stages.prune's channel method); returns the
    per-layer record. `images` are train images as the validator prepares them, at p["imgsz"]."""
    from posecompress.yolo.prunable import training_only_readers, whole_blocks
    from posecompress.yolo.pruning import rewrite_c2f

    rewrite_c2f(model)
    model.eval()
    prune_head = p.get("prune_head", False)
    layout = Layout(model, p["imgsz"], whole_blocks(model, p["keep_whole"], prune_head))
    if not layout.groups:
        raise PruningError("no layer outside the head's outputs and the blocks left whole can lose channels")
    batch = p["batch"]
    stats = channel_statistics(model, images, batch)
    order = channel_order(layout, p["criterion"], stats)
    if p["allocation"] == "uniform":
        plan = uniform_plan(layout, p["ratio"], p["max_pruning_ratio"], p["round_to"])
        if p["ratio"] > 0 and not any(plan.values()):
            raise PruningError(f"ratio {p['ratio']:g} with round_to {p['round_to']} removes no channel from any "
                               f"layer (each keeps the nearest multiple of round_to); raise ratio or lower round_to")
    elif p["gflops_reduction"] == 0:
        plan = {}
    else:
        cuts = allowed_cuts(layout, p["max_pruning_ratio"], p["round_to"])
        most = 1 - layout.macs({name: max(n, default=0) for name, n in cuts.items()}) / layout.macs()
        if most < p["gflops_reduction"]:  # before the minutes of measuring
            raise PruningError(f"gflops_reduction {p['gflops_reduction']:g} cannot be reached within "
                               f"max_pruning_ratio: every layer at its limit removes {most:.1%}")
        distortion = sensitivity(layout, order, stats, images[:SENSITIVITY_IMAGES], batch, cuts, at_outputs=prune_head)
        plan = sensitivity_plan(layout, distortion, p["gflops_reduction"])
    record = layer_record(layout, plan)
    prune_with_compensation(layout, plan, order, stats, p["compensate"], training_only_readers(model) if prune_head else {})
    return record
