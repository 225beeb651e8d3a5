"""Pruning and fine-tuning the converted activity classifier.

Unstructured: L1 magnitude pruning of the Linear/Conv weights (per layer or global), zeros
baked in. Structured: whole hidden neurons removed, so the matrices really shrink: every
Linear whose output reaches exactly one next Linear through element-wise operations only
(activations, per-feature scale/shift) loses its rows with the smallest L1 norm, and the next
Linear the matching columns. Conv channels are left as they are.
Fine-tuning keeps every zeroed weight at zero (masks), so the pruning ratio does not change.
"""
import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from posecompress.classifier.models import graph_constant, prunable

# onnx2torch / torch modules that act on each element alone (OnnxFunction wraps Tanh, Exp, ...).
ELEMENTWISE = {"ReLU", "ELU", "LeakyReLU", "Sigmoid", "Tanh", "SELU", "CELU", "Softplus", "SiLU",
               "Hardswish", "Hardsigmoid", "OnnxFunction", "Identity"}


def accounting(model: nn.Module, original: nn.Module) -> dict:
    """The study's figures against the original: its parameter count, the parameters removed
    (structured) or zeroed in Linear/Conv weights (unstructured), and their ratio."""
    total = sum(p.numel() for p in original.parameters())
    removed = total - sum(p.numel() for p in model.parameters())
    zeros = sum(int((m.weight == 0).sum()) for m in prunable(model))
    return {"total_params": total, "pruned_params": removed + zeros, "prune_ratio": (removed + zeros) / total}


def prune_unstructured(model: nn.Module, amount: float, scope: str) -> nn.Module:
    """Zero the share `amount` of Linear/Conv weights with the smallest |w| (per layer or global)."""
    modules = prunable(model)
    if scope == "global":
        prune.global_unstructured([(m, "weight") for m in modules], pruning_method=prune.L1Unstructured,
                                  amount=amount)
    else:
        for m in modules:
            prune.l1_unstructured(m, "weight", amount=amount)
    for m in modules:
        prune.remove(m, "weight")
    return model


def _elementwise_step(gm, node, src, width: int) -> bool:
    """Whether `node` maps the `width` features of `src` one by one (activation or per-feature constant)."""
    if node.op != "call_module":
        return False
    kind = type(gm.get_submodule(node.target)).__name__
    if kind in ELEMENTWISE:
        return tuple(node.args) == (src,)
    if kind == "OnnxBinaryMathOperation" and src in node.args and len(node.args) == 2:
        other = node.args[1] if node.args[0] is src else node.args[0]
        value = graph_constant(gm, other)
        return value is not None and (value.numel() == 1 or value.shape[-1] == value.numel() == width)
    return False


def neuron_chains(gm: torch.fx.GraphModule) -> list:
    """(Linear node, element-wise nodes between, next Linear node) for every prunable hidden layer."""
    chains = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), nn.Linear):
            continue
        width, path, cur = gm.get_submodule(node.target).out_features, [], node
        while len(cur.users) == 1:
            user = next(iter(cur.users))
            if user.op == "call_module" and isinstance(gm.get_submodule(user.target), nn.Linear) \
                    and tuple(user.args) == (cur,):
                chains.append((node, path, user))
                break
            if not _elementwise_step(gm, user, cur, width):
                break
            path.append(user)
            cur = user
    return chains


def prune_neurons(gm: torch.fx.GraphModule, amount: float) -> list:
    """Remove the share `amount` of each hidden Linear layer's neurons (smallest L1 row norm);
    returns (name, width before, width after) per layer."""
    if not isinstance(gm, torch.fx.GraphModule):
        raise TypeError("structured pruning needs the converted torch.fx.GraphModule")
    changes = []
    for node, path, nxt in neuron_chains(gm):
        a, b = gm.get_submodule(node.target), gm.get_submodule(nxt.target)
        k = max(1, int(round(a.out_features * (1 - amount))))
        keep = torch.sort(torch.topk(a.weight.detach().abs().sum(1), k).indices).values
        with torch.no_grad():
            new_a = nn.Linear(a.in_features, k, bias=a.bias is not None)
            new_a.weight.copy_(a.weight[keep])
            if a.bias is not None:
                new_a.bias.copy_(a.bias[keep])
            new_b = nn.Linear(k, b.out_features, bias=b.bias is not None)
            new_b.weight.copy_(b.weight[:, keep])
            if b.bias is not None:
                new_b.bias.copy_(b.bias)
        for step in path:  # per-feature constants in between lose the same features
            for arg in step.args:
                value = graph_constant(gm, arg)
                if value is not None and value.numel() == a.out_features > 1:
                    owner, _, name = arg.target.rpartition(".")
                    sliced = value.detach().index_select(value.dim() - 1, keep).clone()
                    module = gm.get_submodule(owner) if owner else gm
                    delattr(module, name)
                    module.register_parameter(name, nn.Parameter(sliced))
        gm.add_submodule(node.target, new_a)
        gm.add_submodule(nxt.target, new_b)
        changes.append((node.target, a.out_features, k))
    gm.recompile()
    return changes


def finetune(model: nn.Module, x: np.ndarray, y: np.ndarray, lr: float, epochs: int, batch: int,
             seed: int, probabilities: bool, device: str = "cpu") -> nn.Module:
    """Adam on cross-entropy, zeroed Linear/Conv weights held at zero by pruning masks, on `device`;
    the model comes back on the CPU.

    `probabilities`: the model ends in a softmax, so the loss takes the log of its outputs.
    """
    torch.manual_seed(seed)
    model.to(device)
    masked = [m for m in prunable(model) if bool((m.weight == 0).any())]
    for m in masked:
        prune.custom_from_mask(m, "weight", mask=(m.weight != 0))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt)).to(device)  # drawn on the CPU: the same order on any device
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            out = model(xt[idx])
            loss = (nn.functional.nll_loss(torch.log(out.clamp_min(1e-12)), yt[idx]) if probabilities
                    else nn.functional.cross_entropy(out, yt[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for m in masked:
        prune.remove(m, "weight")
    return model.cpu().eval()
