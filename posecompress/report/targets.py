"""The report's Targets section: each baseline's targets for its compressed models (issue 15's for
the demo's yolov8n-pose, issue 13's for yolo11n-pose), met or missed and by how much, from each
run's own benchmark."""
from posecompress.report.markdown import ms, pct, table, times
from posecompress.report.sections import MAP_NAMES, percent

# Issue 15, item 4: what the compressed models must reach, one row each: (variant, figure, against,
# bound). "speed": against's latency over the variant's (the benchmark's statistic) at least bound;
# a mAP key: the variant's at most bound below against's. "best_fp32": the benchmark's fastest FP32
# form of the baseline.
TARGETS = [
    ("int8_baseline", "speed", "ultralytics_openvino_int8", 1.0),
    ("int8_baseline", "pose_map50", "ultralytics_openvino_int8", 0.005),
    ("int8_fast", "speed", "onnx_baseline", 6.0),
    ("int8_fast", "speed", "best_fp32", 3.0),
    ("int8_fast", "pose_map50_95", "onnx_baseline", 0.01),
    ("int8_fast", "pose_map50", "onnx_baseline", 0.02),
]
# Issue 13, item 4: the demo's yolo11n-pose, `fast` against its own FP32 ONNX at 480x640.
YOLO11_TARGETS = [
    ("int8_fast", "speed", "onnx_baseline", 4.0),
    ("int8_fast", "pose_map50_95", "onnx_baseline", 0.01),
    ("int8_fast", "pose_map50", "onnx_baseline", 0.02),
]
TARGETS_OF = {"yolo11n-pose": YOLO11_TARGETS}  # a baseline's architecture -> its targets; others: TARGETS


def targets_of(m: dict) -> list:
    """The targets a run's baseline is held to, by its architecture (TARGETS_OF, else TARGETS)."""
    return TARGETS_OF.get((m.get("eval_baseline") or {}).get("architecture"), TARGETS)


def target_results(bm: dict, held_to=None) -> list:
    """Each target of `held_to` (default TARGETS) whose variants and figures the benchmark has, as a
    dict: the targets row with
    `against` resolved, `ours` and `theirs` (latencies or mAPs), `value` (the speed-up, or the mAP
    lost), `gap` (how far it falls short, 0 when met) and `met`."""
    rows, stat = bm.get("variants") or {}, f"latency_ms_{bm.get('statistic', 'p50')}"
    out = []
    for variant, figure, against, bound in held_to or TARGETS:
        ref = bm.get("best_fp32") if against == "best_fp32" else against
        key = stat if figure == "speed" else figure
        ours, theirs = (rows.get(variant) or {}).get(key), (rows.get(ref) or {}).get(key)
        if ours is None or theirs is None:
            continue  # a run without that recipe, peer or figure: nothing to hold it to
        if figure == "speed":
            value = theirs / ours
            gap = max(0.0, bound - value)
        else:  # rounded: the figures have 5 decimals, a float difference must not miss by 1e-18
            value = round(theirs - ours, 9)
            gap = max(0.0, round(value - bound, 9))
        out.append({"variant": variant, "figure": figure, "against": ref, "fastest": against == "best_fp32",
                    "bound": bound, "ours": ours, "theirs": theirs, "value": value, "gap": gap, "met": gap == 0})
    return out


def points(fraction) -> str:
    """A difference of two fractions in percentage points."""
    return f"{100 * fraction:.2f} points"


def target_row(t: dict, stat: str, band: float = 0.0) -> list:
    """[target, measured, result] cells of one target_results entry; a speed missed by less than the
    run's noise band `band` (a fraction) is said to be within it."""
    against = f"`{t['against']}`{' (the fastest FP32)' if t['fastest'] else ''}"
    bound = t["bound"]
    if t["figure"] == "speed":
        factor = "" if bound == 1 else f"{bound:g}× "
        return [f"`{t['variant']}` at least {factor}as fast as {against}",
                f"{times(t['value'])} ({ms(t['ours'])} against {ms(t['theirs'])}, {stat})",
                "**met**" if t["met"] else f"**missed**: {100 * t['gap'] / bound:.1f}% short of {bound:g}×"
                + (" (within the run's noise band)" if t["gap"] <= band * bound else "")]
    side = "the same" if t["value"] == 0 else f"{points(abs(t['value']))} {'below' if t['value'] > 0 else 'above'}"
    return [f"`{t['variant']}` pose {MAP_NAMES[t['figure']]} within {points(bound)} of {against}",
            f"{pct(t['ours'])} against {pct(t['theirs'])}: {side}",
            "**met**" if t["met"] else f"**missed**: {points(t['gap'])} beyond the {points(bound)} allowed"]


def run_rows(m: dict) -> list:
    """[target, measured, result] rows of one run's targets (targets_of) from its benchmark."""
    bm = m.get("benchmark") or {}
    if not isinstance(bm.get("variants"), dict):
        return []
    stat = bm.get("statistic", "p50")
    return [target_row(t, stat, bm.get("noise_band", 0.0)) for t in target_results(bm, targets_of(m))]


def targets(m: dict, others=None):
    """This run's targets (targets_of), then each recorded run's in `others` ({name: metrics}), each
    met or missed and by how much; nothing when no run has its targets' variants."""
    this = (m.get("eval_baseline") or {}).get("architecture")
    runs = [(f"{this} (this run)" if this else "this run", m), *sorted((others or {}).items())]
    rows = [[name, *row] for name, mm in runs for row in run_rows(mm)]
    if not rows:
        return [], set()
    bm = m.get("benchmark") or {}
    stat = bm.get("statistic", "p50")
    band = f" ({percent(100 * bm['noise_band'])} in this run)" if "noise_band" in bm else ""
    intro = (f"Each baseline's targets (issue 13's for yolo11n-pose, issue 15's for any other), from its run's "
             f"own benchmark: speed-ups are ratios of the `{stat}` latencies, and a speed within the run's "
             f"noise band{band} of its target is the same speed.")
    if all(r[0] == runs[0][0] for r in rows):
        return [intro, table(["target", "measured", "result"], [r[1:] for r in rows])], {"benchmark"}
    return [intro, table(["run", "target", "measured", "result"], rows)], {"benchmark"}
