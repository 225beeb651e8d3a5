"""The whole report: its sections in order, the figures drawn beside it, the recorded runs read."""
import shutil
from pathlib import Path

from posecompress.report import sections, targets
from posecompress.report.figures import LATENCY_COLUMNS, compare_bars, curves, read_points, scatter
from posecompress.report.frontier import frontier_section
from posecompress.report.markdown import load_metrics

HEADER = ("# Compression report\n\n"
          "Written by the `report` stage from `metrics/` and `plots/` of this run "
          "(`dvc repro`); the reference study's figures are shown in brackets as *study*. "
          "Accuracies are pose mAP on the val split unless named otherwise.\n")


def benchmark_figure(plots: Path, figures: Path, statistic=None) -> list:
    """Accuracy against latency from the benchmark's CSV table, if there is one; Markdown lines."""
    tables = sorted(plots.glob("benchmark/*.csv")) if plots.is_dir() else []
    latency = (f"latency_ms_{statistic}",) if statistic else ()
    for csv_path in tables:
        points, x, y = read_points(csv_path, latency + LATENCY_COLUMNS)
        if points:
            png = scatter(points, figures / "accuracy_latency.png", x, y,
                          "Accuracy against latency, one point per variant")
            return [f"![accuracy against latency]({figures.name}/{png.name})",
                    f"*From `{csv_path.as_posix()}`: `{y}` against `{x}`.*"]
    return []


FINETUNE_Y = "metrics/mAP50-95(P)"  # the pose mAP50-95 column of Ultralytics' results.csv


def finetune_figure(plots: Path, figures: Path, runs=None, baseline=None) -> list:
    """Every recipe's pose mAP50-95 per fine-tune epoch, this run's beside the recorded runs'
    (<runs>/<name>/plots/finetune/), the baseline's as a level; Markdown lines."""
    import csv

    sources = [("", plots)] + [(f"{d.name}: ", d / "plots") for d in
                               (sorted(Path(runs).iterdir()) if runs and Path(runs).is_dir() else [])]
    series = {}
    for prefix, folder in sources:
        for path in sorted(folder.glob("finetune/*.csv")) if folder.is_dir() else []:
            with path.open() as f:
                rows = [{k.strip(): v for k, v in r.items() if k} for r in csv.DictReader(f)]
            if len(rows) > 1:  # a one-epoch fine-tune is a point, in the table already
                series[f"{prefix}{path.stem}"] = rows
    if not series:
        return []
    level = ("baseline", baseline) if baseline is not None else None
    png = curves(series, "epoch", FINETUNE_Y, figures / "finetune_curves.png",
                 "Pose mAP50-95 on val after each fine-tune epoch", level, ylabel="pose mAP50-95")
    recorded = any(": " in name for name in series)
    return [f"![fine-tune curves]({figures.name}/{png.name})",
            f"*From `{(plots / 'finetune').as_posix()}/<recipe>.csv`"
            + (f" and the recorded runs' `{Path(runs).as_posix()}/<run>/plots/finetune/`" if recorded else "")
            + " (fine-tunes of more than one epoch): the EMA weights validated after each epoch, as"
            " Ultralytics' trainer does; the baseline as its own validation measured it.*"]


def copied_figures(plots: Path, figures: Path, pattern: str, caption: str) -> list:
    """Every image under plots/ matching `pattern`, copied beside the report; Markdown lines."""
    lines = []
    for src in sorted(plots.glob(pattern)) if plots.is_dir() else []:
        target = figures / "_".join(src.relative_to(plots).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        lines += [f"![{caption}]({figures.name}/{target.name})", f"*{caption}: `{src.as_posix()}`.*"]
    return lines


def recorded_runs(folder) -> dict:
    """{name: metrics} of the runs recorded under folder/<name>/metrics (none without a folder)."""
    folder = Path(folder) if folder else None
    if not folder or not folder.is_dir():
        return {}
    return {d.name: load_metrics(d / "metrics") for d in sorted(folder.iterdir()) if (d / "metrics").is_dir()}


def build_report(metrics_dir: Path, plots: Path, figures: Path, others=None, spec=None, runs=None) -> str:
    """The report's Markdown; figures are written into `figures`, which sits beside the report.
    `others`: {name: metrics} of other baselines' recorded runs, shown beside this one; `spec`: the
    targets they are held to (targets.read_targets; none: no Targets section); `runs`: the folder they were
    read from, whose fine-tune curves are drawn beside this run's."""
    m = load_metrics(metrics_dir)
    used, absent = set(), []
    parts = [HEADER]
    statistic = (m.get("benchmark") or {}).get("statistic")
    # other baselines' runs: a section only when some are recorded
    front = frontier_section(runs, figures)  # recorded sweeps: a section only when there is one
    recorded = [("Other baselines: YOLO11, YOLO26, ...", lambda mm: sections.architectures(mm, others), [])]
    for title, section, extra in (
            ("YOLO pose: baseline", sections.baseline, []),
            ("YOLO pose: pruning and fine-tuning", sections.pruning,
             finetune_figure(plots, figures, runs, (m.get("eval_baseline") or {}).get("pose_map50_95"))),
            ("YOLO pose: ONNX and INT8 quantization", sections.quantization, []),
            ("All variants: accuracy, latency and size", sections.variants,
             benchmark_figure(plots, figures, statistic)),
            ("Targets", lambda mm: targets.targets(mm, spec, others) if spec else ([], set()), []),
            *(recorded if others else []),
            *([("Frontier: accuracy against latency", lambda mm: (front, set()), [])] if front else []),
            ("Activity classifier", sections.classifier,
             copied_figures(plots, figures, "classifier*/**/confusion*.png",
                            "Confusion matrices, original beside pruned and fine-tuned")),
            ("Detector and classifier together", sections.system,
             copied_figures(plots, figures, "system_eval/**/*.png",
                            "Val images, baseline pair beside compressed pairs"))):
        body, keys = section(m)
        used |= keys
        if body:
            parts += [f"## {title}\n", "\n\n".join(body + extra), ""]
        else:
            absent.append(title)
    if absent:
        parts += [f"_Left out, as this run has no metrics for them: {'; '.join(absent)}._", ""]
    png = compare_bars(["baseline", "pruned", "fine-tuned", "quantized"], sections.study_comparison(m),
                       figures / "study_comparison.png", "pose mAP50-95", "The study's method, step by step")
    parts += ["## Beside the reference study\n", f"![study and this run]({figures.name}/{png.name})", ""]
    rest = sections.other(m, used)
    if rest:
        parts += ["## Other metrics\n", rest, ""]
    return "\n".join(parts)
