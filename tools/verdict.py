"""The pull request's verdict: which headline figures changed beyond noise against a base revision, and why.

    python -m tools.verdict --base main --report report/report.md --out report/pr.md

Compares metrics/ and dvc.lock of the working tree with those committed at --base
(posecompress/review/verdict.py says how each figure is judged). Writes --out: the verdict and its
table first; plots that changed, before and after; then `dvc metrics diff` and `dvc params diff`
in full and the pipeline's report, folded. Prints the verdict's first lines and exits 1 when a
headline figure got worse beyond noise or a target of params.yaml's `targets` is newly missed, so
CI can gate on it (`make report BASE=<rev>`).
"""
import argparse
import subprocess
import sys
from pathlib import Path

from posecompress.common.checks import InputError, run_stage
from posecompress.common.outputs import atomic_path
from posecompress.review.plots_diff import changed_plots
from posecompress.report.targets import read_targets
from posecompress.review.verdict import (by_stage, causes, census_change, folded, git, headline_figures, judge, lock_stages,
                                         metrics_at, producer, target_lines, verdict_lines, verdict_table)


def dvc_md(*args) -> str:
    """`dvc <args> --md`, or a line saying it failed."""
    res = subprocess.run([sys.executable, "-m", "dvc", *args, "--md"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else f"`dvc {' '.join(args)}` failed: {res.stderr.strip()[-300:]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="git revision to compare with (a branch, tag or commit)")
    ap.add_argument("--metrics", default="metrics", help="metrics folder")
    ap.add_argument("--plots", default="plots", help="plots folder")
    ap.add_argument("--lock", default="dvc.lock")
    ap.add_argument("--report", help="the pipeline's report, folded in at the end")
    ap.add_argument("--out", help="Markdown to write (figures beside it, in <name>-figures/)")
    ap.add_argument("--floor", type=float, default=0.05, help="least noise band of a speed-up (fraction)")
    ap.add_argument("--params", default="params.yaml", help="params file holding `targets`")
    a = ap.parse_args()
    spec = read_targets(a.params)
    try:
        git("rev-parse", "--verify", f"{a.base}^{{commit}}")
    except InputError:
        raise InputError(f"--base {a.base}: not a commit of this repository (a branch, tag or commit; "
                         f"`git fetch` it first if it is a remote's)") from None
    metrics_dir = Path(a.metrics)
    if not metrics_dir.is_dir():
        raise InputError(f"metrics folder {metrics_dir}: not found; run `dvc repro` first")
    head_lock = lock_stages(Path(a.lock).read_text() if Path(a.lock).is_file() else "")
    try:
        base_lock = lock_stages(git("show", f"{a.base}:{a.lock}"))
    except InputError:
        base_lock = {}
    base_metrics, head_metrics = metrics_at(a.base, metrics_dir), metrics_at(None, metrics_dir)
    rows = judge(headline_figures(base_metrics), headline_figures(head_metrics), a.floor)
    data = census_change(base_metrics, head_metrics)
    why = {(r["file"], r["key"]): "; ".join(filter(None, [data, causes(base_lock, head_lock,
                                                                     producer(head_lock, f"{a.metrics}/{r['file']}") or "")]))
           for r in rows if r["verdict"] in ("worse", "better")}
    first, worse = verdict_lines(rows, a.base, why)
    missed, newly_missed = target_lines(by_stage(base_metrics), by_stage(head_metrics), spec, a.base)
    first += missed
    print("\n".join(first))
    if a.out:
        out = Path(a.out)
        with atomic_path(out.parent / f"{out.stem}-figures") as figures, atomic_path(out) as tmp:
            figures.mkdir()
            parts = [f"# Pull request report: this tree against `{a.base}`\n", *first, "",
                     "## Headline figures\n", *verdict_table(rows), "",
                     *changed_plots(a.base, Path(a.plots), figures), "",
                     "## Everything else\n",
                     *folded(f"`dvc metrics diff {a.base}`: every metric that changed", dvc_md("metrics", "diff", a.base)),
                     *folded(f"`dvc params diff {a.base}`", dvc_md("params", "diff", a.base))]
            if a.report and Path(a.report).is_file():
                parts += folded("The pipeline's report", Path(a.report).read_text())  # its figures/ sits beside
            tmp.write_text("\n".join(parts) + "\n")
        print(f"pull request report: {out}")
    sys.exit(1 if worse or newly_missed else 0)


if __name__ == "__main__":
    run_stage(main)
