"""The report's Targets section: each baseline's targets for its compressed models (params.yaml's
`targets`), from each run's own benchmark, each met, within noise, missed (and by how much) or not
measurable."""
from posecompress.common.checks import InputError, load_params, param, unknown_keys
from posecompress.report.markdown import ms, pct, table, times
from posecompress.report.sections import MAP_NAMES, percent

# a target's bound key -> the figure it holds ("speed": against's latency over the variant's)
BOUNDS = {"min_speedup": "speed", "max_loss_pose_map50_95": "pose_map50_95", "max_loss_pose_map50": "pose_map50"}
MET, WITHIN_NOISE, MISSED, NOT_MEASURABLE = "met", "within noise", "missed", "not measurable"


def read_targets(path) -> dict:
    """params.yaml's `targets`, checked: {"accuracy_floor": float, "baselines": {name: [(variant,
    figure, against, bound), ...]}}."""
    s = load_params(path, "targets")
    unknown_keys(s, {"accuracy_floor", "baselines"}, "targets")
    floor = param(s, "accuracy_floor", float, "targets.accuracy_floor", 0.0, 1.0)
    lists = s.get("baselines")
    if not isinstance(lists, dict):
        raise InputError(f"parameter targets.baselines: expected a mapping of baseline name to a list, got {lists!r}")
    baselines = {}
    for name, entries in lists.items():
        where = f"targets.baselines.{name}"
        if not isinstance(entries, list):
            raise InputError(f"parameter {where}: expected a list of targets, got {entries!r}")
        rows = []
        for i, t in enumerate(entries):
            at = f"{where}[{i}]"
            if not isinstance(t, dict):
                raise InputError(f"parameter {at}: expected a mapping (variant, against, and one bound), got {t!r}")
            unknown_keys(t, {"variant", "against", *BOUNDS}, at)
            bounds = [k for k in BOUNDS if k in t]
            if len(bounds) != 1:
                raise InputError(f"parameter {at}: expected exactly one of {', '.join(BOUNDS)}, got {bounds or 'none'}")
            high = None if bounds[0] == "min_speedup" else 1.0
            rows.append((param(t, "variant", str, f"{at}.variant"), BOUNDS[bounds[0]],
                         param(t, "against", str, f"{at}.against"),
                         param(t, bounds[0], float, f"{at}.{bounds[0]}", 0.0, high)))
        baselines[name] = rows
    return {"accuracy_floor": floor, "baselines": baselines}


def targets_of(m: dict, spec: dict) -> list:
    """The targets a run's baseline is held to: its architecture's list, else `default` (none
    without either)."""
    lists = spec["baselines"]
    return lists.get((m.get("eval_baseline") or {}).get("architecture"), lists.get("default", []))


def target_results(bm: dict, held_to: list, floor: float) -> list:
    """Each target of `held_to` whose variants and figures the benchmark has, as a dict: the
    target's fields with `against` resolved, `ours` and `theirs` (latencies or mAPs), `value` (the
    speed-up, or the mAP lost), `gap` (how far it falls short, 0 when met) and `state`: met; within
    noise (a speed short of its bound by less than the run's noise band: the same speed); missed;
    not measurable (an accuracy whose reference scores under `floor`: a dead model 'keeps' 0)."""
    rows, stat = bm.get("variants") or {}, f"latency_ms_{bm.get('statistic', 'p50')}"
    band = bm.get("noise_band", 0.0)
    out = []
    for variant, figure, against, bound in held_to:
        ref = bm.get("best_fp32") if against == "best_fp32" else against
        key = stat if figure == "speed" else figure
        ours, theirs = (rows.get(variant) or {}).get(key), (rows.get(ref) or {}).get(key)
        if ours is None or theirs is None:
            continue  # a run without that recipe, peer or figure: nothing to hold it to
        if figure == "speed":
            value = theirs / ours
            gap = max(0.0, bound - value)
            state = MET if gap == 0 else WITHIN_NOISE if gap <= band * bound else MISSED
        else:  # rounded: the figures have 5 decimals, a float difference must not miss by 1e-18
            value = round(theirs - ours, 9)
            gap = max(0.0, round(value - bound, 9))
            state = NOT_MEASURABLE if theirs < floor else MET if gap == 0 else MISSED
        out.append({"variant": variant, "figure": figure, "against": ref, "fastest": against == "best_fp32",
                    "bound": bound, "ours": ours, "theirs": theirs, "value": value, "gap": gap, "state": state,
                    "met": state == MET})
    return out


def points(fraction) -> str:
    """A difference of two fractions in percentage points."""
    return f"{100 * fraction:.2f} points"


def target_row(t: dict, stat: str, floor: float = 0.0) -> list:
    """[target, measured, result] cells of one target_results entry."""
    against = f"`{t['against']}`{' (the fastest FP32)' if t['fastest'] else ''}"
    bound, state = t["bound"], t["state"]
    if t["figure"] == "speed":
        factor = "" if bound == 1 else f"{bound:g}× "
        short = f"{100 * t['gap'] / bound:.1f}% short of {bound:g}×"
        return [f"`{t['variant']}` at least {factor}as fast as {against}",
                f"{times(t['value'])} ({ms(t['ours'])} against {ms(t['theirs'])}, {stat})",
                {MET: "**met**", WITHIN_NOISE: f"**within noise**: {short}, inside the run's noise band",
                 MISSED: f"**missed**: {short}"}[state]]
    side = "the same" if t["value"] == 0 else f"{points(abs(t['value']))} {'below' if t['value'] > 0 else 'above'}"
    return [f"`{t['variant']}` pose {MAP_NAMES[t['figure']]} within {points(bound)} of {against}",
            f"{pct(t['ours'])} against {pct(t['theirs'])}: {side}",
            {MET: "**met**", MISSED: f"**missed**: {points(t['gap'])} beyond the {points(bound)} allowed",
             NOT_MEASURABLE: f"**not measurable**: {against} scores under the {pct(floor)} floor"}[state]]


def run_rows(m: dict, spec: dict) -> list:
    """[target, measured, result] rows of one run's targets (targets_of) from its benchmark."""
    bm = m.get("benchmark") or {}
    if not isinstance(bm.get("variants"), dict):
        return []
    stat, floor = bm.get("statistic", "p50"), spec["accuracy_floor"]
    return [target_row(t, stat, floor) for t in target_results(bm, targets_of(m, spec), floor)]


def targets(m: dict, spec: dict, others=None):
    """This run's targets (targets_of), then each recorded run's in `others` ({name: metrics}); nothing
    when no run has its targets' variants."""
    this = (m.get("eval_baseline") or {}).get("architecture")
    runs = [(f"{this} (this run)" if this else "this run", m), *sorted((others or {}).items())]
    rows = [[name, *row] for name, mm in runs for row in run_rows(mm, spec)]
    if not rows:
        return [], set()
    bm = m.get("benchmark") or {}
    stat = bm.get("statistic", "p50")
    band = f" ({percent(100 * bm['noise_band'])} in this run)" if "noise_band" in bm else ""
    intro = (f"Each baseline's targets (params.yaml's `targets`: its architecture's, else `default`), from its "
             f"run's own benchmark. Speed-ups are ratios of the `{stat}` latencies; a speed short of its target "
             f"by less than the run's noise band{band} is **within noise**, neither met nor missed. An accuracy "
             f"target whose reference scores under {pct(spec['accuracy_floor'])} is **not measurable**.")
    if all(r[0] == runs[0][0] for r in rows):
        return [intro, table(["target", "measured", "result"], [r[1:] for r in rows])], {"benchmark"}
    return [intro, table(["run", "target", "measured", "result"], rows)], {"benchmark"}
