"""Accuracy against latency across DVC experiments, one point per experiment, to choose a trade-off.

    python -m tools.exp_plot --x metrics/benchmark.json:variants.int8_fast.latency_ms_p50 \
        --y metrics/benchmark.json:variants.int8_fast.pose_map50_95 --out exp_plot.png

Reads `dvc exp show --json` (run in the current repository, or a file saved from it with
--json-file), takes one metric per axis as FILE:DOTTED.KEY, and writes a PNG scatter plus a
CSV beside it (experiment, rev, x, y, and every parameter that differs between experiments).
Experiments that lack either metric are left out and named on stderr.
"""
import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from posecompress.common.checks import InputError, run_stage
from posecompress.report.figures import scatter
from posecompress.report.markdown import flatten, pick
from posecompress.common.outputs import atomic_path


def exp_show(json_file=None) -> list:
    """`dvc exp show --json` as parsed JSON, from the repository or a saved file."""
    if json_file:
        return json.loads(Path(json_file).read_text())
    res = subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True)
    if res.returncode != 0:
        raise InputError(f"dvc exp show failed: {res.stderr.strip()[-300:]}")
    return json.loads(res.stdout)


def experiments(shown: list) -> list:
    """(name, rev, metrics {file: data}, params {dotted: value}) of every commit shown and of each
    of its experiments; the workspace and queued or failed runs are left out."""
    found = []

    def add(entry):
        data = entry.get("data") or {}
        if entry.get("rev") == "workspace" or entry.get("error") or not data.get("metrics"):
            return
        metrics = {f: (v or {}).get("data") or {} for f, v in data["metrics"].items()}
        params = {k: v for p in (data.get("params") or {}).values()
                  for k, v in flatten((p or {}).get("data") or {}).items()}
        found.append((entry.get("name") or entry["rev"][:7], entry["rev"], metrics, params))

    for commit in shown:
        add(commit)
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                add(rev)
    return found


def varying_params(runs: list) -> list:
    """The dotted parameter names whose value differs between the experiments, sorted."""
    return sorted(k for k in {k for *_, p in runs for k in p} if len({str(p.get(k)) for *_, p in runs}) > 1)


def axis_value(metrics: dict, spec: str):
    """The metric FILE:DOTTED.KEY of one experiment, or None."""
    file, _, key = spec.partition(":")
    value = pick(metrics.get(file, {}), key)
    return float(value) if isinstance(value, (int, float)) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--x", required=True, help="latency metric, FILE:DOTTED.KEY")
    ap.add_argument("--y", required=True, help="accuracy metric, FILE:DOTTED.KEY")
    ap.add_argument("--out", default="exp_plot.png", help="PNG to write; the CSV goes beside it")
    ap.add_argument("--json-file", help="saved `dvc exp show --json` output (default: run it)")
    a = ap.parse_args()
    for spec in (a.x, a.y):
        if ":" not in spec:
            raise InputError(f"metric {spec!r}: expected FILE:DOTTED.KEY")
    runs = experiments(exp_show(a.json_file))
    varying = varying_params(runs)
    rows, missing = [], []
    for name, rev, metrics, params in runs:
        x, y = axis_value(metrics, a.x), axis_value(metrics, a.y)
        if x is None or y is None:
            missing.append(name)
            continue
        rows.append({"experiment": name, "rev": rev, "x": x, "y": y, **{k: params.get(k) for k in varying}})
    if missing:
        print(f"left out (no {a.x} or {a.y}): {', '.join(missing)}", file=sys.stderr)
    if not rows:
        raise InputError(f"no experiment has both {a.x} and {a.y}")
    out = Path(a.out)
    scatter([(r["experiment"], r["x"], r["y"]) for r in rows], out, a.x, a.y,
            "Accuracy against latency, one point per experiment")
    with atomic_path(out.with_suffix(".csv")) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} experiments -> {out}, {out.with_suffix('.csv')}")


if __name__ == "__main__":
    run_stage(main)
