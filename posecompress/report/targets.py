"""The report's Targets section: issue 15's targets for the compressed models, each met or missed
and by how much, from the benchmark's own figures."""
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


def target_results(bm: dict) -> list:
    """Each target whose variants and figures the benchmark has, as a dict: the TARGETS row with
    `against` resolved, `ours` and `theirs` (latencies or mAPs), `value` (the speed-up, or the mAP
    lost), `gap` (how far it falls short, 0 when met) and `met`."""
    rows, stat = bm.get("variants") or {}, f"latency_ms_{bm.get('statistic', 'p50')}"
    out = []
    for variant, figure, against, bound in TARGETS:
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


def targets(m: dict):
    """Issue 15's targets (TARGETS), each met or missed and by how much; none without their variants."""
    bm = m.get("benchmark") or {}
    results = target_results(bm) if isinstance(bm.get("variants"), dict) else []
    if not results:
        return [], set()
    stat = bm.get("statistic", "p50")
    band = f" ({percent(100 * bm['noise_band'])} in this run)" if "noise_band" in bm else ""
    return [f"Issue 15's targets, from this run's benchmark: speed-ups are ratios of the `{stat}` latencies, "
            f"and a speed within the run's noise band{band} of its target is the same speed.",
            table(["target", "measured", "result"], [target_row(t, stat, bm.get("noise_band", 0.0))
                                                     for t in results])], {"benchmark"}
