"""Stage report: the Markdown report a reviewer reads in a pull request, from this run's metrics.

    python -m stages.report --metrics metrics --plots plots --out report/report.md --figures report/figures

Reads whatever metrics and plots the pipeline has written and tells the reference study's story
with this run's numbers, the study's own figures beside them: the baseline, pruning and
fine-tuning, quantization, one table of every variant's accuracy, latency, speed-up and sizes
(Ultralytics' own exports beside ours), the targets they are held to (met, or missed by how much),
the classifier, and the detector + classifier system. A section whose metrics are absent is
left out with a note, so the report works for any subset of the pipeline.
"""
import argparse
from pathlib import Path

from posecompress.common.checks import InputError, run_stage
from posecompress.common.outputs import atomic_path
from posecompress.report import targets
from posecompress.report.document import build_report, recorded_runs

def read_params(path) -> dict:
    """params.yaml's `targets`, checked (posecompress/report/targets.py)."""
    return targets.read_targets(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metrics", required=True, help="metrics folder")
    ap.add_argument("--plots", required=True, help="plots folder (may be absent)")
    ap.add_argument("--out", required=True, help="report Markdown to write")
    ap.add_argument("--figures", required=True, help="folder for the report's images, beside --out")
    ap.add_argument("--runs", help="folder of other baselines' recorded runs, <runs>/<name>/metrics/")
    ap.add_argument("--params", default="params.yaml", help="params file holding `targets`")
    a = ap.parse_args()
    spec = read_params(a.params)
    metrics_dir, plots, out, figures = Path(a.metrics), Path(a.plots), Path(a.out), Path(a.figures)
    if not metrics_dir.is_dir():
        raise InputError(f"metrics folder {metrics_dir}: not found")
    if figures.resolve().parent != out.resolve().parent:
        raise InputError(f"--figures {figures}: must sit beside the report {out}, for its relative links")
    # the temporary folder has the final folder's name, so the report's links hold once moved
    with atomic_path(figures) as tmp_figures:
        text = build_report(metrics_dir, plots, tmp_figures, recorded_runs(a.runs), spec, a.runs)
        with atomic_path(out) as tmp:
            tmp.write_text(text)
    print(f"report: {out} ({len(text.splitlines())} lines), figures in {figures}")


if __name__ == "__main__":
    run_stage(main)
