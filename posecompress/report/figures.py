"""Accuracy-against-latency scatter plots and training curves, for the reports and for comparing experiments."""
import csv
from pathlib import Path

from posecompress.common.outputs import atomic_path

LATENCY_COLUMNS = ("latency_ms_p50", "latency_ms", "latency_ms_mean", "latency")
ACCURACY_COLUMNS = ("pose_map50_95", "map50_95", "accuracy", "pose_map50", "acc")
LABEL_COLUMNS = ("variant", "name", "model")


def read_points(csv_path, x_columns=LATENCY_COLUMNS, y_columns=ACCURACY_COLUMNS) -> tuple:
    """(points, x column, y column) from a CSV table with one row per variant: the first of the
    candidate columns present in its header is used for each axis; rows without numbers are left out."""
    with open(csv_path, newline="") as f:
        return points_of(list(csv.DictReader(f)), x_columns, y_columns)


def points_of(rows: list, x_columns=LATENCY_COLUMNS, y_columns=ACCURACY_COLUMNS) -> tuple:
    """read_points for CSV rows already read (dicts)."""
    header = list(rows[0]) if rows else []
    x = next((c for c in x_columns if c in header), None)
    y = next((c for c in y_columns if c in header), None)
    label = next((c for c in LABEL_COLUMNS if c in header), header[0] if header else None)
    if x is None or y is None:
        return [], x, y
    points = []
    for i, row in enumerate(rows):
        try:
            points.append((row.get(label) or f"row {i + 1}", float(row[x]), float(row[y])))
        except (TypeError, ValueError):
            continue
    return points, x, y


def scatter(points: list, path, xlabel: str, ylabel: str, title: str) -> Path:
    """PNG scatter of (label, x, y) points, each labelled; written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, x, y in points:
        ax.scatter(x, y, s=36)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    xs = [x for _, x, _ in points]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:  # PyTorch and INT8 ONNX can be 100x apart
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        # no timestamp in the file, so an unchanged figure is an unchanged file
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def compare_bars(labels: list, series: dict, path, ylabel: str, title: str) -> Path:
    """PNG of grouped bars, one group per label and one bar per series; None values are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j, v in enumerate(values) if v is not None]
        bars = ax.bar(xs, [v for v in values if v is not None], width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(labels))], labels)
    top = max((v for values in series.values() for v in values if v is not None), default=1.0)
    ax.set(ylabel=ylabel, title=title, ylim=(0, top * 1.3))
    ax.legend(loc="upper right", ncol=len(series))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def curves(series: dict, x: str, y: str, path, title: str, level: tuple = None, ylabel: str = None) -> Path:
    """PNG of one line per series ({name: CSV rows}), y against x (the axis named `ylabel`, else
    y), and a dashed horizontal line at `level` ((label, value)), if given; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, rows in series.items():
        pts = [(float(r[x]), float(r[y])) for r in rows if r.get(x) and r.get(y)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
    if level:
        ax.axhline(level[1], color="grey", linestyle="--", label=level[0])
    ax.set(xlabel=x, ylabel=ylabel or y, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def frontier(sweeps: dict, peers: list, path, xlabel: str, ylabel: str, title: str, level: tuple = None) -> Path:
    """PNG of sweeps ({name: [(label, x, y), ...]}), each joined in x order, comparison points
    (peers, (label, x, y)) as grey squares beside them, and a dashed horizontal line at `level`
    ((label, value)), if given; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for name, points in sweeps.items():
        points = sorted(points, key=lambda p: p[1])
        ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", label=name)
        for label, x, y in points:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if peers:
        ax.scatter([p[1] for p in peers], [p[2] for p in peers], marker="s", color="grey", label="comparison")
        for label, x, y in peers:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=7, color="dimgrey")
    if level:
        ax.axhline(level[1], color="grey", linestyle="--", linewidth=1, label=level[0])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def confusion_figure(path, matrices: dict, classes: list) -> None:
    """The named confusion matrices side by side, rows normalised, class names on the axes."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(9 * len(matrices), 8.5), constrained_layout=True)
    for ax, (title, m) in zip(np.atleast_1d(axes), matrices.items()):
        share = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=5,
                        color="white" if share[i, j] > 0.5 else "black")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
