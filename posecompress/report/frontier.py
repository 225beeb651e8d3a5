"""A sweep's frontier in the report: the experiments' points (written by tools.frontier as
results/<name>/frontier.csv) against INT8 latency, beside the comparison variants."""
import csv
from pathlib import Path

from posecompress.report.figures import frontier
from posecompress.report.markdown import ms, num, table, times

# a frontier CSV's own columns; every other column is a parameter the sweep varied
COLUMNS = ["point", "kind", "gflops", "latency_ms", "speedup_vs_onnx_fp32", "pose_map50_95", "pose_map50"]


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def frontier_section(runs, figures: Path) -> list:
    """Each recorded sweep's frontier (<runs>/<name>/frontier.csv, written by tools.frontier): its
    points against INT8 latency beside the comparison variants, a table, and the fastest point
    within a point of the ONNX baseline's pose mAP50-95; Markdown lines (none without a sweep)."""
    lines = []
    for path in sorted(Path(runs).glob("*/frontier.csv")) if runs and Path(runs).is_dir() else []:
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if _number(r.get("latency_ms")) is not None]
        sweep = [r for r in rows if r["kind"] == "sweep"]
        if not sweep:
            continue
        peers = [r for r in rows if r["kind"] == "peer"]
        # how the models were made; the benchmark's own settings (images timed) do not change them
        swept = [k for k in rows[0] if k not in COLUMNS and not k.startswith("benchmark.")]
        short = lambda k: k.rsplit(".", 1)[-1]  # noqa: E731
        label = lambda r: ", ".join(f"{short(k)} {r[k]}" for k in swept) or r["point"]  # noqa: E731
        # one line per setting of everything but the pruning: e.g. one per fine-tune length
        cut = [k for k in swept if ".prune." in k] or swept[:1]
        group = lambda r: ", ".join(f"{short(k)} {r[k]}" for k in swept if k not in cut) or "sweep"  # noqa: E731
        lines_of = {}
        for r in sweep:
            lines_of.setdefault(group(r), []).append(
                (", ".join(str(r[k]) for k in cut), _number(r["latency_ms"]), _number(r["pose_map50_95"])))
        base = next((_number(r["pose_map50_95"]) for r in peers if r["point"] == "onnx_baseline"), None)
        png = frontier(lines_of, [(r["point"], _number(r["latency_ms"]), _number(r["pose_map50_95"])) for r in peers],
                       figures / f"frontier_{path.parent.name}.png", "latency (ms, 1 thread)", "pose mAP50-95",
                       f"{path.parent.name} (points: {', '.join(map(short, cut))})",
                       ("ONNX baseline - 1 point", base - 0.01) if base is not None else None)
        body = [f"![frontier {path.parent.name}]({figures.name}/{png.name})",
                table(["point", *map(short, swept), "GFLOPs", "latency", "× ORT FP32", "pose mAP50-95", "mAP50"],
                      [[r["point"], *(r[k] for k in swept), _number(r["gflops"]), ms(_number(r["latency_ms"])),
                        times(_number(r["speedup_vs_onnx_fp32"])), _number(r["pose_map50_95"]),
                        _number(r["pose_map50"])] for r in sorted(sweep, key=lambda r: float(r["latency_ms"]))]
                      + [[r["point"], *("" for _ in swept), "", ms(_number(r["latency_ms"])),
                          times(_number(r["speedup_vs_onnx_fp32"])), _number(r["pose_map50_95"]),
                          _number(r["pose_map50"])] for r in peers])]
        if base is not None:
            within = [r for r in sweep if _number(r["pose_map50_95"]) >= base - 0.01]
            best = min(within, key=lambda r: float(r["latency_ms"]), default=None)
            body.append(f"Fastest point within 1 point of the ONNX baseline's pose mAP50-95 ({num(base)}): "
                        + (f"**{best['point']}** ({label(best)}), {ms(_number(best['latency_ms']))}, "
                           f"{times(_number(best['speedup_vs_onnx_fp32']))} ORT FP32." if best else "none."))
        body.append(f"*From `{path.as_posix()}` (tools.frontier): one point per experiment of the sweep, "
                    "the comparison variants' median over its experiments.*")
        lines += body
    return lines
