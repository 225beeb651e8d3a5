"""The YOLO track's pruning methods, one row each: what a recipe's `prune` section must say for it,
what it refuses before any work, and how it prunes a model in place.

A new method is a new row of PRUNE_METHODS (and its choice in params.yaml's comments); the
prune stage reads this table and nothing else.
"""
from typing import Callable, NamedTuple

from posecompress.common.checks import InputError, param
from posecompress.yolo.channel_pruning import ALLOCATIONS, PruningError, adapt_batchnorm, prune_channels
from posecompress.yolo.prunable import unfollowed_modules
from posecompress.yolo.pruning import (ACTIVATIONS, CRITERIA, SCOPES, STRUCTURED, UNSTRUCTURED, prune_unstructured,
                                       swap_activation)


class PruneMethod(NamedTuple):
    params: Callable  # (section, dotted name) -> the method's own parameters, checked
    check: Callable   # (torch module, params, recipe) -> None, or InputError naming what it cannot prune
    prune: Callable   # (torch module, params, train images tensor or None) -> the record saved in the checkpoint
    needs_images: bool = False  # whether prune reads train images (calibration_images of them)
    optional: tuple = ()        # keys it reads besides the checked parameters params returns


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


def _unstructured(module, p: dict, images) -> dict:
    return {"method": UNSTRUCTURED, "layers": prune_unstructured(module, p["amount"], p["scope"], p["include_head"])}


def _channel_params(s: dict, n: str) -> dict:
    p = {"criterion": param(s, "criterion", str, f"{n}.criterion", choices=CRITERIA),
         "allocation": param(s, "allocation", str, f"{n}.allocation", choices=ALLOCATIONS),
         "max_pruning_ratio": param(s, "max_pruning_ratio", float, f"{n}.max_pruning_ratio", 0.0, 1.0,
                                    high_open=True),
         "round_to": param(s, "round_to", int, f"{n}.round_to", 1, 256),
         "compensate": param(s, "compensate", bool, f"{n}.compensate"),
         "adapt_bn": param(s, "adapt_bn", bool, f"{n}.adapt_bn"),
         "calibration_images": param(s, "calibration_images", int, f"{n}.calibration_images", 1, 100000),
         "activation": param(s, "activation", str, f"{n}.activation", choices=ACTIVATIONS),
         "keep_whole": type_names(s, "keep_whole", f"{n}.keep_whole"),
         "prune_head": param(s, "prune_head", bool, f"{n}.prune_head")}
    # each allocation reads its own budget and refuses the other's, which it would ignore
    own, other = ("ratio", "gflops_reduction") if p["allocation"] == "uniform" else ("gflops_reduction", "ratio")
    if other in s:
        raise InputError(f"parameter {n}.{other}: not read by allocation {p['allocation']} (it reads {own}); "
                         f"remove it, or set allocation: {'sensitivity' if other == 'gflops_reduction' else 'uniform'}")
    p[own] = param(s, own, float, f"{n}.{own}", 0.0, 1.0, high_open=True)
    if own == "ratio" and p["ratio"] > p["max_pruning_ratio"]:
        raise InputError(f"parameter {n}.ratio: {p['ratio']:g} is above max_pruning_ratio "
                         f"{p['max_pruning_ratio']:g}, which no layer may lose; lower ratio or raise max_pruning_ratio")
    return p


def _channel_check(module, p: dict, recipe: str) -> None:
    """Torch-Pruning would otherwise fail deep inside on a module it cannot follow, or run out of memory."""
    bad = unfollowed_modules(module, p["keep_whole"])
    if bad:
        name, kind = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(f"recipes.{recipe}.prune: channel pruning cannot follow {kind} ({name}){more}; add "
                         f"{kind} to recipes.{recipe}.prune.keep_whole to leave it unpruned, or use "
                         f"method: {UNSTRUCTURED}")


def _channel(module, p: dict, images) -> dict:
    try:
        layers = prune_channels(module, images, p)
    except PruningError as e:
        raise InputError(f"channel pruning: {e}") from None
    except (IndexError, RuntimeError, MemoryError) as e:  # a block _channel_check let through
        raise InputError(f"channel pruning failed inside Torch-Pruning ({e.__class__.__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); add the block it failed on to "
                         f"keep_whole, or use method: {UNSTRUCTURED}"[:400]) from None
    swapped = swap_activation(module, p["activation"])
    if p["adapt_bn"]:  # after the swap: the new activations change every distribution after them
        adapt_batchnorm(module, images, p["batch"])
    return {"method": STRUCTURED, "activation": p["activation"], "channels": layers,
            **({f"{p['activation']}_swapped": swapped} if swapped else {})}


PRUNE_METHODS = {
    # the study's: the smallest |w| zeroed in place, zeros saved and counted as the study did
    UNSTRUCTURED: PruneMethod(_unstructured_params, lambda module, p, recipe: None, _unstructured),
    # whole channels removed (Torch-Pruning), the Pose head's inner ones with prune_head: the one that speeds up
    STRUCTURED: PruneMethod(_channel_params, _channel_check, _channel, needs_images=True,
                            optional=("ratio", "gflops_reduction")),
}
