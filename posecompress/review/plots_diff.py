"""The plots a pull request changed, before and after, for the verdict's report (tools/verdict.py).

Images (`*.png` plots: sample sheets, confusion matrices) are shown as they were at the base
revision and as they are now. CSV tables are drawn for both revisions where the figures module
knows their shape (accuracy against latency, per-epoch curves); any other changed plot is named
with the `dvc plots diff` command that renders it.
"""
import csv
import io
from pathlib import Path

from posecompress.report.figures import curves, points_of, scatter
from posecompress.review.verdict import file_at, tracked


def _rows(data: bytes) -> list:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _draw(name: str, before: bytes, after: bytes, figures: Path):
    """Markdown for one changed CSV plot, drawn for both revisions, or None if its shape is unknown."""
    rows_b, rows_a = _rows(before), _rows(after)
    header = list(rows_a[0]) if rows_a else []
    if "epoch" in header:
        y = next((c for c in header if "mAP50-95" in c), None)
        if y:
            png = curves({"before": rows_b, "after": rows_a}, "epoch", y, figures / f"{name}.png", name)
            return f"![{name}]({figures.name}/{png.name})"
    (pb, x, y), (pa, _, _) = points_of(rows_b), points_of(rows_a)
    if pb and pa:
        b = scatter(pb, figures / f"{name}.before.png", x, y, f"{name}: before")
        a = scatter(pa, figures / f"{name}.after.png", x, y, f"{name}: after")
        return f"![before]({figures.name}/{b.name}) ![after]({figures.name}/{a.name})"
    return None


def changed_plots(base: str, plots: Path, figures: Path) -> list:
    """Markdown lines showing every plot file that differs from `base`, written into `figures`."""
    now = {p.relative_to(Path.cwd()) if p.is_absolute() else p for p in plots.rglob("*") if p.is_file()} \
        if plots.is_dir() else set()
    lines = []
    for path in sorted(now | {Path(n) for n in tracked(base, plots)}):
        before, after = file_at(base, path), path.read_bytes() if path.is_file() else None
        if before == after:
            continue
        name = "_".join(path.relative_to(plots).with_suffix("").parts)
        shown = None
        if before is not None and after is not None:
            if path.suffix == ".png":
                (figures / f"{name}.before.png").write_bytes(before)
                (figures / f"{name}.after.png").write_bytes(after)
                shown = f"![before]({figures.name}/{name}.before.png) ![after]({figures.name}/{name}.after.png)"
            elif path.suffix == ".csv":
                shown = _draw(name, before, after, figures)
        state = "new" if before is None else "removed" if after is None else "changed"
        lines += [f"**`{path.as_posix()}`** ({state}, before → after)" if shown else
                  f"**`{path.as_posix()}`** {state}: `dvc plots diff {base} --targets {path.as_posix()}` renders it"]
        if shown:
            lines.append(shown)
        lines.append("")
    return (["## Plots that changed\n", *lines] if lines else [])
