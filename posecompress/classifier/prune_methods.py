"""The classifier track's pruning methods, one row each: what a classifier recipe's `prune`
section must say for it, and how it prunes a converted classifier in place.

A new method is a new row of PRUNE_METHODS; the classifier_prune stage reads this table only.
"""
from typing import Callable, NamedTuple

from posecompress.classifier.pruning import prune_neurons, prune_unstructured
from posecompress.common.checks import InputError, param


class PruneMethod(NamedTuple):
    params: Callable  # (section, dotted name) -> the method's own parameters, checked
    prune: Callable   # (module, params) -> structured changes: [(layer, width before, after)]


def _unstructured(model, p: dict) -> list:
    prune_unstructured(model, p["amount"], p["scope"])
    return []


def _structured(model, p: dict) -> list:
    changes = prune_neurons(model, p["amount"])
    if not changes:
        raise InputError("structured pruning: the classifier has no hidden Linear layer feeding "
                         "another through element-wise operations only")
    return changes


PRUNE_METHODS = {
    # zero the share `amount` of the Linear/Conv weights with the smallest |w|, per layer or globally
    "l1_unstructured": PruneMethod(lambda s, n: {"scope": param(s, "scope", str, f"{n}.scope",
                                                                choices=("layer", "global"))}, _unstructured),
    # remove the share `amount` of every hidden Linear layer's neurons: smaller matrices
    "structured": PruneMethod(lambda s, n: {}, _structured),
}
