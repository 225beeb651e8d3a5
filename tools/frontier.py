"""A sweep's frontier: accuracy against INT8 latency, one point per experiment, Ultralytics'
exports and the baseline beside them, written where the report draws it.

    dvc exp run --queue -n cut-30 -S recipes.fast.prune.gflops_reduction=0.3 -S recipes.fast.finetune.epochs=10
    ...                                          # one experiment per level (or one -S with a comma list)
    dvc queue start --jobs 1                     # one at a time: the benchmark times on a quiet CPU
    python -m tools.frontier --select 'cut-*' --out results/frontier-mymodel/frontier.csv
    dvc repro report                             # the report draws results/*/frontier.csv

Reads `dvc exp show --json` (or a saved copy, --json-file). Each selected experiment gives one
point: its `--variant`'s latency (the benchmark's own statistic, at benchmark.imgsz) and pose
mAP, its recipe's GFLOPs, and the parameters that differ between the experiments. The
comparison rows (`--peers`) are timed again in every experiment: their median latency is kept.
Experiments that ran on different baselines, input sizes or statistics are refused: their
points would not share one axis.
"""
import argparse
import csv
import fnmatch
import statistics
import sys
from pathlib import Path

from posecompress.common.checks import InputError, run_stage
from posecompress.common.outputs import atomic_path
from posecompress.report.frontier import COLUMNS
from tools.exp_plot import exp_show, experiments, varying_params

BENCHMARK = "metrics/benchmark.json"
PEERS = ("onnx_baseline", "int8_baseline", "ultralytics_openvino_fp32", "ultralytics_openvino_int8",
         "ultralytics_onnx_int8")
# what every point of one frontier must share
SAME = ("baseline.model", "benchmark.imgsz", "benchmark.statistic", "export_onnx.imgsz")


def selected(shown: list, patterns: list) -> list:
    """The experiments (not the commits they ran from) whose name matches one of the patterns."""
    commits = {c.get("rev") for c in shown}
    return [r for r in experiments(shown) if r[1] not in commits and r[2].get(BENCHMARK)
            and any(fnmatch.fnmatch(r[0], p) for p in patterns)]


def frontier_rows(runs: list, variant: str, peers=PEERS) -> list:
    """One row per experiment (kind `sweep`) and one per peer variant (kind `peer`), as COLUMNS
    plus the parameters that differ between the experiments."""
    if not runs:
        raise InputError("no experiment selected has metrics/benchmark.json: check --select and `dvc exp show`")
    for key in SAME:
        values = {str(p.get(key)) for *_, p in runs}
        if len(values) > 1:
            raise InputError(f"experiments differ in {key} ({', '.join(sorted(values))}): "
                             f"select the ones of one sweep with --select")
    recipe = variant.split("_", 1)[1] if "_" in variant else variant
    varying = varying_params(runs)
    rows, timed = [], {}
    for name, _, metrics, params in runs:
        bench = metrics[BENCHMARK]
        stat = f"latency_ms_{bench.get('statistic', 'min')}"
        v = (bench.get("variants") or {}).get(variant)
        if not v:
            print(f"left out {name}: no variant {variant} in its benchmark", file=sys.stderr)
            continue
        rows.append({"point": name, "kind": "sweep",
                     "gflops": (metrics.get(f"metrics/prune/{recipe}.json") or {}).get("gflops"),
                     **figures(v, stat), **{k: params.get(k) for k in varying}})
        for peer in peers:
            if peer in bench.get("variants", {}):
                timed.setdefault(peer, []).append(figures(bench["variants"][peer], stat))
    if not rows:
        raise InputError(f"no selected experiment has variant {variant} in {BENCHMARK}")
    for peer, seen in timed.items():
        rows.append({"point": peer, "kind": "peer", "gflops": None,
                     **{k: statistics.median(s[k] or 0 for s in seen) for k in seen[0]},
                     **{k: None for k in varying}})
    return rows


def figures(v: dict, stat: str) -> dict:
    """A benchmark variant's latency (by the benchmark's statistic), speed-up and pose mAP."""
    return {"latency_ms": v[stat], "speedup_vs_onnx_fp32": v.get("speedup_vs_onnx_fp32"),
            "pose_map50_95": v.get("pose_map50_95"), "pose_map50": v.get("pose_map50")}


def write_rows(rows: list, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS + [k for k in rows[0] if k not in COLUMNS])
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--select", nargs="+", default=["*"],
                    help="experiment names (shell patterns) of the sweep; default: every experiment")
    ap.add_argument("--variant", default="int8_fast", help="the benchmark variant each experiment adds a point of")
    ap.add_argument("--peers", nargs="*", default=list(PEERS), help="benchmark variants drawn beside the sweep")
    ap.add_argument("--out", required=True, help="CSV to write (results/<name>/frontier.csv for the report)")
    ap.add_argument("--json-file", help="saved `dvc exp show --json` output (default: run it)")
    a = ap.parse_args()
    if Path(a.out).suffix != ".csv":
        raise InputError(f"--out {a.out}: expected a .csv file")
    rows = frontier_rows(selected(exp_show(a.json_file), a.select), a.variant, a.peers)
    write_rows(rows, Path(a.out))
    sweep = [r for r in rows if r["kind"] == "sweep"]
    print(f"{len(sweep)} experiments and {len(rows) - len(sweep)} comparison variants -> {a.out}")
    for r in sorted(sweep, key=lambda r: r["latency_ms"]):
        print(f"  {r['point']}: {r['latency_ms']:.2f} ms, {r['speedup_vs_onnx_fp32']:.2f}x, "
              f"pose mAP50-95 {r['pose_map50_95']:.4f}, mAP50 {r['pose_map50']:.4f}")


if __name__ == "__main__":
    run_stage(main)
