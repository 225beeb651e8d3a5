"""The YOLO track's pruning methods, one row each: what a recipe's `prune` section must say for it,
what it refuses before any work, and how it prunes a model in place.

A new method is a new row of PRUNE_METHODS (and its choice in params.yaml's comments); the
prune stage reads this table and nothing else.
"""
from typing import Callable, NamedTuple

from posecompress.common.checks import InputError, param
from posecompress.yolo.prunable import unfollowed_modules
from posecompress.yolo.pruning import (ACTIVATIONS, CRITERIA, SCOPES, STRUCTURED, UNSTRUCTURED, prune_channels,
                                       prune_unstructured, swap_activation)


class PruneMethod(NamedTuple):
    params: Callable  # (section, dotted name) -> the method's own parameters, checked
    check: Callable   # (torch module, params, recipe) -> None, or InputError naming what it cannot prune
    prune: Callable   # (torch module, params) -> the record saved in the checkpoint


def type_names(section: dict, key: str, name: str) -> list:
    """An optional list of module type names (default: none)."""
    value = section.get(key, [])
    if not (isinstance(value, list) and all(isinstance(v, str) and v.isidentifier() for v in value)):
        raise InputError(f"parameter {name}: expected a list of module type names, got {value!r}")
    return value


def _unstructured_params(s: dict, n: str) -> dict:
    return {"amount": param(s, "amount", float, f"{n}.amount", 0.0, 1.0, high_open=True),
            "scope": param(s, "scope", str, f"{n}.scope", choices=SCOPES),
            "include_head": param(s, "include_head", bool, f"{n}.include_head")}


def _unstructured(module, p: dict) -> dict:
    return {"method": UNSTRUCTURED, "layers": prune_unstructured(module, p["amount"], p["scope"], p["include_head"])}


def _channel_params(s: dict, n: str) -> dict:
    return {"criterion": param(s, "criterion", str, f"{n}.criterion", choices=CRITERIA),
            "ratio": param(s, "ratio", float, f"{n}.ratio", 0.0, 1.0, high_open=True),
            "max_pruning_ratio": param(s, "max_pruning_ratio", float, f"{n}.max_pruning_ratio", 0.0, 1.0,
                                       high_open=True),
            "round_to": param(s, "round_to", int, f"{n}.round_to", 1, 256),
            "global_pruning": param(s, "global_pruning", bool, f"{n}.global_pruning"),
            "activation": param(s, "activation", str, f"{n}.activation", choices=ACTIVATIONS),
            "keep_whole": type_names(s, "keep_whole", f"{n}.keep_whole")}


def _channel_check(module, p: dict, recipe: str) -> None:
    """Torch-Pruning would otherwise fail deep inside on a module it cannot follow, or run out of memory."""
    bad = unfollowed_modules(module, p["keep_whole"])
    if bad:
        name, kind = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(f"recipes.{recipe}.prune: channel pruning cannot follow {kind} ({name}){more}; add "
                         f"{kind} to recipes.{recipe}.prune.keep_whole to leave it unpruned, or use "
                         f"method: {UNSTRUCTURED}")


def _channel(module, p: dict) -> dict:
    try:
        prune_channels(module, p["imgsz"], p["criterion"], p["ratio"], p["max_pruning_ratio"],
                       p["round_to"], p["global_pruning"], p["keep_whole"])
    except (IndexError, RuntimeError, ValueError, MemoryError) as e:  # a block _channel_check let through
        raise InputError(f"channel pruning failed inside Torch-Pruning ({e.__class__.__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); add the block it failed on to "
                         f"keep_whole, or use method: {UNSTRUCTURED}"[:400]) from None
    swapped = swap_activation(module, p["activation"])
    return {"method": STRUCTURED, "activation": p["activation"],
            **({f"{p['activation']}_swapped": swapped} if swapped else {})}


PRUNE_METHODS = {
    # the study's: the smallest |w| zeroed in place, zeros saved and counted as the study did
    UNSTRUCTURED: PruneMethod(_unstructured_params, lambda module, p, recipe: None, _unstructured),
    # whole channels removed outside the Pose head (Torch-Pruning): the one that speeds up
    STRUCTURED: PruneMethod(_channel_params, _channel_check, _channel),
}
