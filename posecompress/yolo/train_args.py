"""Ultralytics train arguments from a recipe, every key and value checked before any work.

Ultralytics' config check (ultralytics.cfg.get_cfg) knows every argument's name and the types
and ranges of most; the values of choice-valued arguments it checks only where it uses them,
after the dataset has loaded (an unknown optimizer is a NotImplementedError from
BaseTrainer.build_optimizer), or never: an unknown `cache` caches nothing, any `copy_paste_mode`
but flip means mixup, a `freeze` of another type freezes nothing. All of it is checked here, and
the first bad argument is named.
"""
from posecompress.common.checks import InputError

# The names BaseTrainer.build_optimizer accepts in Ultralytics 8.4 (matched case-insensitively).
# They are a local of that method, so nothing to import; tests/test_bad_data.py builds each one
# with Ultralytics' own trainer, so the list cannot name an optimizer Ultralytics lacks.
OPTIMIZERS = ("SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop", "auto")
# The values the code reading these arguments tells apart (Ultralytics 8.4): BaseDataset (cache),
# v8_transforms (copy_paste_mode), check_det_dataset (split, the split validated during training).
CHOICES = {"cache": (False, True, "ram", "disk"), "copy_paste_mode": ("flip", "mixup"),
           "split": ("train", "val", "test")}


def check_train_args(section: dict, name: str) -> dict:
    """The section's train arguments, each checked by Ultralytics' config check and, where it only
    checks them late or never, against the values Ultralytics uses; the optimizer's name as
    Ultralytics spells it. InputError naming the first bad one (`name` is the section's dotted name)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT, get_cfg

    args = dict(section)
    for key, value in args.items():
        try:
            get_cfg(DEFAULT_CFG_DICT, {key: value})
        except (SyntaxError, TypeError, ValueError) as e:
            raise InputError(f"parameter {name}.{key}: {' '.join(str(e).split())}"[:300]) from None
        if key not in DEFAULT_CFG_DICT:  # get_cfg renames a deprecated argument and drops a removed one
            raise InputError(f"parameter {name}.{key}: deprecated or removed in this Ultralytics version")
    if "optimizer" in args:
        spelled = {o.lower(): o for o in OPTIMIZERS}.get(args["optimizer"].lower())
        if spelled is None:
            raise InputError(f"parameter {name}.optimizer: {args['optimizer']!r} is not one of {', '.join(OPTIMIZERS)}")
        args["optimizer"] = spelled
    for key, choices in CHOICES.items():
        # by type too: `cache: 1` equals True but Ultralytics caches only for True itself
        if key in args and not any(args[key] == c and type(args[key]) is type(c) for c in choices):
            raise InputError(f"parameter {name}.{key}: {args[key]!r} is not one of {', '.join(map(str, choices))}")
    if not layers_to_freeze(args.get("freeze")):
        raise InputError(f"parameter {name}.freeze: expected a number of leading layers, or a list of layer "
                         f"indices or module names, got {args['freeze']!r}")
    return args


def layers_to_freeze(value) -> bool:
    """Whether `value` is a `freeze` BaseTrainer reads: none, a count of leading layers, or a list of
    layer indices and module names ("23.cv2")."""
    def index(v):
        return type(v) is int and v >= 0

    return value is None or index(value) or (isinstance(value, list) and all(index(v) or isinstance(v, str)
                                                                              for v in value))
