"""Formatting figures and tables as GitHub-flavoured Markdown, for the report a reviewer reads."""
import json
from pathlib import Path

DASH = "–"


def load_metrics(folder) -> dict:
    """Every JSON file under a metrics folder, keyed by its path relative to it without `.json`
    (`eval_baseline`, `prune/fast`, ...); unreadable files are skipped, as if absent."""
    found = {}
    for f in sorted(Path(folder).rglob("*.json")):
        try:
            found[f.relative_to(folder).with_suffix("").as_posix()] = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
    return found


def under(metrics: dict, prefix: str) -> dict:
    """The files in folder `prefix` of load_metrics' result, keyed by their own name."""
    return {k[len(prefix) + 1:]: v for k, v in metrics.items() if k.startswith(prefix + "/")}


def pick(d, *keys, default=None):
    """The value of the first of `keys` that `d` holds (dotted keys reach into nested dicts)."""
    for key in keys:
        node = d
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return default


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dict as {dotted.key: leaf}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def pct(fraction, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage."""
    return DASH if fraction is None else f"{100 * fraction:.{digits}f}%"


def num(x, digits: int = 4) -> str:
    """An integer with thousands separators, a float with `digits` significant figures."""
    if x is None:
        return DASH
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def mb(size_bytes) -> str:
    return DASH if size_bytes is None else f"{size_bytes / 1e6:.2f} MB"


def ms(value) -> str:
    return DASH if value is None else f"{value:.1f} ms"


def times(ratio) -> str:
    return DASH if ratio is None else f"{ratio:.2f}×"


def table(headers: list, rows: list) -> str:
    """A Markdown table; cells are formatted already (str) or shown with num()."""
    cell = lambda v: (v if isinstance(v, str) else num(v)).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
