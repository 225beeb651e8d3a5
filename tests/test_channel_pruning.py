"""Channel pruning layer by layer on the tiny YOLOv8 pose model: the per-layer rule under a sweep of
ratios and round_to values, compensation of removed channels, adaptive BatchNorm, sensitivity
allocation within its budget, and the prune section's refusals (in-process)."""
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from posecompress.common.checks import InputError
from posecompress.yolo import channel_pruning as cp
from posecompress.yolo.models import load_pose_model
from posecompress.yolo.prunable import whole_blocks
from posecompress.yolo.pruning import rewrite_c2f

IMGSZ = 64


def layout_of(path) -> cp.Layout:
    model = load_pose_model(path).model.eval()
    rewrite_c2f(model)
    return cp.Layout(model, IMGSZ, whole_blocks(model))


def images(n=8, seed=0) -> torch.Tensor:
    return torch.rand(n, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("round_to", [1, 4, 8, 16])
def test_every_layer_keeps_what_the_rule_says_and_more_ratio_never_cuts_less(tiny_yolo, round_to):
    layout = layout_of(tiny_yolo)
    max_ratio, previous = 0.6, None
    for ratio in np.linspace(0, max_ratio, 13):
        plan = cp.uniform_plan(layout, ratio, max_ratio, round_to)
        for g in layout.groups:
            kept = g.channels - plan[g.name]
            assert kept >= g.channels * (1 - max_ratio) - 1e-9, (g.name, ratio)  # never past max_pruning_ratio
            if kept < g.channels:
                assert kept % round_to == 0, (g.name, ratio, kept)
                # the nearest allowed count, unless max_pruning_ratio held it back
                nearest = abs(kept - g.channels * (1 - ratio)) <= round_to / 2 + 1e-9
                assert nearest or kept == int(np.ceil(g.channels * (1 - max_ratio) / round_to - 1e-9)) * round_to
            elif g.channels >= round_to and ratio * g.channels > round_to / 2 + 1e-9:
                # left whole only where no allowed count is within max_pruning_ratio
                assert int(np.ceil(g.channels * (1 - max_ratio) / round_to - 1e-9)) * round_to >= g.channels
            if previous is not None:
                assert plan[g.name] >= previous[g.name], (g.name, ratio)
        if previous is not None:
            assert layout.macs(plan) <= layout.macs(previous)
        previous = plan


def test_the_pruned_model_has_the_planned_channels_and_its_output_shapes(tiny_yolo):
    layout = layout_of(tiny_yolo)
    model, x = layout.model, images(2)
    with torch.no_grad():
        shape = model(x)[0].shape
    plan = cp.uniform_plan(layout, 0.5, 0.6, 4)
    stats = cp.channel_statistics(model, images(), 4)
    order = cp.channel_order(layout, "l2", stats)
    cp.prune_with_compensation(layout, plan, order, stats, compensate=True)
    for g in layout.groups:
        for conv, _ in g.out_convs:
            assert conv.out_channels == g.channels - plan[g.name], g.name
    with torch.no_grad():
        assert model(x)[0].shape == shape


def _group_read_by_1x1_convs_only(layout):
    """A group whose every reader is a 1x1 convolution (a C2f's first half, read only by its cv2),
    where compensation is exact: a 3x3 reader's zero padding sees the constant only inside."""
    for g in layout.groups:
        readers = layout.readers[g.name]
        if readers and all(c.kernel_size == (1, 1) for c in readers) and len(g.out_convs) == 1:
            return g
    raise AssertionError("no group read by 1x1 convolutions only")


@pytest.mark.parametrize("compensate", [True, False])
def test_compensation_keeps_the_outputs_of_channels_that_carry_only_their_batchnorm_shift(tiny_yolo, compensate):
    layout = layout_of(tiny_yolo)
    model, x = layout.model, images(4)
    g = _group_read_by_1x1_convs_only(layout)
    conv, idx = g.out_convs[0]
    gone = np.arange(g.channels // 2)
    bn = next(m.bn for m in model.modules() if getattr(m, "conv", None) is conv)
    with torch.no_grad():
        conv.weight[idx[gone]] = 0  # the channel's output is act(BatchNorm shift): a constant, not 0
        bn.bias[idx[gone]] = torch.linspace(0.5, 2.0, len(gone))
        before = model(x)[0]
    stats = cp.channel_statistics(model, images(8, seed=1), 4)
    order = {name: np.arange(n) for name, n in ((h.name, h.channels) for h in layout.groups)}
    order[g.name] = np.concatenate([gone, np.setdiff1d(np.arange(g.channels), gone)])
    cp.prune_with_compensation(layout, {g.name: len(gone)}, order, stats, compensate)
    assert conv.out_channels == g.channels - len(gone)
    with torch.no_grad():
        after = model(x)[0]
    if compensate:
        torch.testing.assert_close(after, before, rtol=0, atol=1e-4)
    else:  # the same pruning without it loses the shift: the reason it is on by default
        assert (after - before).abs().max() > 1e-2


def test_adaptive_batchnorm_changes_running_statistics_only(tiny_yolo):
    model = load_pose_model(tiny_yolo).model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [bn.momentum for bn in bns]
    assert cp.adapt_batchnorm(model, images(8), 4) == len(bns) > 0
    after = model.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for k, v in before.items():
        if k.endswith(stats):
            continue
        assert torch.equal(after[k], v), k
    assert any(not torch.equal(after[k], v) for k, v in before.items() if k.endswith("running_mean"))
    assert [bn.momentum for bn in bns] == momenta and not any(m.training for m in model.modules())


def test_sensitivity_allocation_meets_its_budget_within_the_rule(tiny_yolo):
    layout = layout_of(tiny_yolo)
    stats = cp.channel_statistics(layout.model, images(), 4)
    order = cp.channel_order(layout, "variance", stats)
    cuts = cp.allowed_cuts(layout, 0.6, 4)
    distortion = cp.sensitivity(layout, order, stats, images(4), 4, cuts)
    assert all(d[0] == 0.0 and all(v >= 0 for v in d.values()) for d in distortion.values())
    plan = cp.sensitivity_plan(layout, distortion, 0.2)
    assert layout.macs(plan) <= 0.8 * layout.macs()
    for g in layout.groups:
        assert plan[g.name] == 0 or plan[g.name] in cuts[g.name]
    with pytest.raises(cp.PruningError, match="cannot be reached within max_pruning_ratio"):
        cp.sensitivity_plan(layout, distortion, 0.95)


def _prune_section(params_file, **changes) -> dict:
    s = dict(yaml.safe_load(params_file.read_text())["recipes"]["fast"]["prune"])
    s.update(changes)
    return {k: v for k, v in s.items() if v is not None}


@pytest.mark.parametrize("changes, message", [
    ({"ratoi": 0.5}, "parameter recipes.fast.prune.ratoi: unknown key; did you mean ratio?"),
    ({"keep_hole": ["C2PSA"]}, "parameter recipes.fast.prune.keep_hole: unknown key; did you mean keep_whole?"),
    ({"ratio": 0.3}, "parameter recipes.fast.prune.ratio: not read by allocation sensitivity"),
    ({"allocation": "uniform", "gflops_reduction": None, "ratio": 0.9},
     "parameter recipes.fast.prune.ratio: 0.9 is above max_pruning_ratio 0.6"),
    ({"allocation": "uniform", "gflops_reduction": None}, "parameter recipes.fast.prune.ratio: missing"),
    ({"criterion": "entropy"}, "parameter recipes.fast.prune.criterion: 'entropy' is not one of"),
])
def test_prune_section_refuses_what_it_cannot_honour(params_file, tmp_path, changes, message):
    from stages.prune import read_params

    params = yaml.safe_load(params_file.read_text())
    params["recipes"]["fast"]["prune"] = _prune_section(params_file, **changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(InputError) as e:
        read_params(path, "fast")
    assert str(e.value).startswith(message), str(e.value)


def test_a_ratio_that_removes_nothing_is_refused_in_one_line(tiny_yolo):
    layout = layout_of(tiny_yolo)
    assert not any(cp.uniform_plan(layout, 0.02, 0.6, 16).values())
    p = {"criterion": "l2", "allocation": "uniform", "ratio": 0.02, "max_pruning_ratio": 0.6, "round_to": 16,
         "compensate": True, "keep_whole": [], "imgsz": IMGSZ, "batch": 4}
    with pytest.raises(cp.PruningError, match="removes no channel from any layer"):
        cp.prune_channels(load_pose_model(tiny_yolo).model, images(4), p)


def test_an_unreachable_budget_is_refused_before_measuring(tiny_yolo):
    p = {"criterion": "variance", "allocation": "sensitivity", "gflops_reduction": 0.95, "max_pruning_ratio": 0.6,
         "round_to": 1, "compensate": True, "keep_whole": [], "imgsz": IMGSZ, "batch": 4}
    with pytest.raises(cp.PruningError, match=r"gflops_reduction 0.95 cannot be reached .* removes \d+\.\d%"):
        cp.prune_channels(load_pose_model(tiny_yolo).model, images(4), p)


def test_zero_means_not_pruned(tiny_yolo):
    for p in ({"allocation": "uniform", "ratio": 0.0}, {"allocation": "sensitivity", "gflops_reduction": 0.0}):
        model = load_pose_model(tiny_yolo).model
        params = sum(t.numel() for t in model.parameters())
        record = cp.prune_channels(model, images(4), {"criterion": "l2", "max_pruning_ratio": 0.6, "round_to": 4,
                                                      "compensate": True, "keep_whole": [], "imgsz": IMGSZ,
                                                      "batch": 4, **p})
        assert all(v["channels_after"] == v["channels_before"] for v in record.values())
        assert sum(t.numel() for t in model.parameters()) == params


def _head_convs(model) -> tuple:
    """(output convolutions, inner convolutions) of the model's head: name -> out_channels."""
    from posecompress.yolo.prunable import head_outputs

    head = model.model[-1]
    outputs = set(head_outputs(head))
    convs = {n: m for n, m in head.named_modules() if isinstance(m, nn.Conv2d)}
    return ({n: m.out_channels for n, m in convs.items() if m in outputs},
            {n: m.out_channels for n, m in convs.items() if m not in outputs})


@pytest.mark.parametrize("prune_head", [False, True])
def test_the_head_loses_inner_channels_only_with_prune_head(tiny_yolo, prune_head):
    model = load_pose_model(tiny_yolo).model.eval()
    x = images(2)
    with torch.no_grad():
        shape = model(x)[0].shape
    outputs, inner = _head_convs(model)
    assert outputs and inner
    record = cp.prune_channels(model, images(8), {
        "criterion": "variance", "allocation": "uniform", "ratio": 0.3, "max_pruning_ratio": 0.6,
        "round_to": 4, "compensate": True, "keep_whole": [], "imgsz": IMGSZ, "batch": 4, "prune_head": prune_head})
    outputs_after, inner_after = _head_convs(model)
    assert outputs_after == outputs  # the predictions keep their channels
    head_layers = [n for n in record if n.startswith(f"model.{len(model.model) - 1}.")]
    if prune_head:
        assert any(inner_after[n] < inner[n] for n in inner) and head_layers
    else:
        assert inner_after == inner and not head_layers
    with torch.no_grad():
        assert model(x)[0].shape == shape


def test_a_pruned_head_is_measured_on_its_predictions(tiny_yolo):
    """The head's own channels leave its inputs unchanged, so with prune_head every layer's damage is
    measured on the predictions: a head layer's is zero untouched and positive pruned."""
    from posecompress.yolo.prunable import whole_blocks

    model = load_pose_model(tiny_yolo).model.eval()
    rewrite_c2f(model)
    layout = cp.Layout(model, IMGSZ, whole_blocks(model, prune_head=True))
    stats = cp.channel_statistics(model, images(), 4)
    order = cp.channel_order(layout, "variance", stats)
    cuts = cp.allowed_cuts(layout, 0.6, 4)
    distortion = cp.sensitivity(layout, order, stats, images(4), 4, cuts, at_outputs=True)
    head = [n for n in distortion if n.startswith(f"model.{len(model.model) - 1}.") and cuts[n]]
    assert head
    for n in head:
        levels = [distortion[n][k] for k in sorted(distortion[n])]
        assert levels[0] == 0.0 and min(levels[1:]) > 0, (n, levels)
