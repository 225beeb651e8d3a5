"""The pull request's verdict: headline figures judged base against head, and what caused a change.

Each headline figure (HEADLINES) is judged by what it is:
- exact: accuracies, prune ratios and file sizes are deterministic for the same inputs and
  parameters (exports and INT8 files are byte-identical), so any change is beyond noise;
- compressed: a ZIP of retrained weights moves by a few bytes when their last bits differ, so
  within COMPRESSED_BAND it is the same model;
- timing: speed-ups are ratios from one round-robin run, judged against the larger noise band the
  base and head runs measured themselves (their `noise_band`), never less than a floor.
A change beyond noise names its cause where dvc.lock shows one: the parameters, code and data of
the stage that wrote the figure and of every stage upstream of it.
"""
import fnmatch
import json
import subprocess
from pathlib import Path

import yaml

from posecompress.common.checks import InputError
from posecompress.report.markdown import flatten, table

# (metrics file, key, figure, judged as, better when higher); `*` stands for a recipe or variant
HEADLINES = [
    ("eval_baseline.json", "pose_map50_95", "pose mAP50-95", "exact", True),
    ("benchmark.json", "variants.*.pose_map50", "pose mAP50", "exact", True),
    ("benchmark.json", "variants.*.pose_map50_95", "pose mAP50-95", "exact", True),
    ("benchmark.json", "variants.*.speedup_vs_onnx_fp32", "speed-up vs ONNX FP32", "timing", True),
    ("benchmark.json", "variants.*.speedup_vs_best_fp32", "speed-up vs fastest FP32", "timing", True),
    # deployed files only: a .pt checkpoint's size also moves with its metadata (dates, train args).
    # Ultralytics' exports (ultralytics_*): their compressed size only. Its ONNX export keeps
    # onnxslim's shape annotations, whose number varies by process (raw size 1.1% apart between two
    # exports of one checkpoint, the ZIP 0.03%)
    ("benchmark.json", "variants.onnx_*.size_bytes", "size", "exact", False),
    ("benchmark.json", "variants.int8_*.size_bytes", "size", "exact", False),
    ("benchmark.json", "variants.onnx_*.zip_bytes", "compressed size", "compressed", False),
    ("benchmark.json", "variants.int8_*.zip_bytes", "compressed size", "compressed", False),
    ("benchmark.json", "variants.ultralytics_*.zip_bytes", "compressed size", "compressed", False),
    ("prune/*.json", "prune_ratio", "prune ratio", "exact", True),
    ("prune/*.json", "gflops_reduction", "GFLOPs cut (%)", "exact", True),
    ("convert_tf.json", "accuracy", "activity accuracy (%)", "exact", True),
    ("classifier_finetune/*.json", "accuracy", "activity accuracy (%)", "exact", True),
    ("classifier_finetune/*.json", "prune_ratio", "prune ratio", "exact", True),
    ("classifier_benchmark/*.json", "speedup", "speed-up", "timing", True),
    ("system_eval.json", "*.activity_acc_all", "system activity accuracy", "exact", True),
    ("system_eval.json", "*.speedup", "system speed-up", "timing", True),
]
# Least band of a timing figure where the run's own passes understate it: the system's end-to-end
# speed-up includes Python pre- and post-processing and moved 12% between two runs of the same
# commit on the demo (its passes said 3-16%); the benchmarks' kernels moved under 1%.
FLOORS = {"system speed-up": 0.15}
COMPRESSED_BAND = 0.001


def git(*args, cwd=".") -> str:
    """stdout of a git command; InputError with git's own message when it fails."""
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise InputError(f"git {' '.join(args)}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'failed'}")
    return res.stdout


def tracked(rev: str, folder: Path) -> list:
    """Paths of the files git holds under `folder` at a revision."""
    return git("ls-tree", "-r", "--name-only", rev, "--", folder.as_posix()).split()


def file_at(rev: str, path: Path):
    """The bytes of a file at a git revision, None where it did not exist."""
    res = subprocess.run(["git", "show", f"{rev}:{Path(path).as_posix()}"], capture_output=True)
    return res.stdout if res.returncode == 0 else None


def metrics_at(rev, folder: Path) -> dict:
    """{path relative to folder: parsed JSON} of the metrics files at a git revision (None: the
    working tree)."""
    if rev is None:
        return {p.relative_to(folder).as_posix(): json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))}
    return {Path(n).relative_to(folder).as_posix(): json.loads(file_at(rev, n))
            for n in tracked(rev, folder) if n.endswith(".json")}


def headline_figures(metrics: dict) -> dict:
    """{(file, key): (figure, judged as, higher is better, noise band)} for every headline value."""
    out = {}
    for file, data in metrics.items():
        flat = flatten(data)
        for pattern, key_pattern, figure, kind, higher in HEADLINES:
            if not fnmatch.fnmatch(file, pattern):
                continue
            for key, value in flat.items():
                if fnmatch.fnmatch(key, key_pattern) and isinstance(value, (int, float)):
                    # the band measured beside the figure (system_eval's per pair), else the file's
                    beside = f"{key.rpartition('.')[0]}.noise_band".lstrip(".")
                    out[(file, key)] = (value, figure, kind, higher, flat.get(beside, data.get("noise_band", 0.0)))
    return out


def judge(base: dict, head: dict, floor: float) -> list:
    """One row per headline figure in either revision: dict with file, key, figure, base, head,
    change (relative for timing) and verdict: worse / better (beyond noise), within noise, same,
    new, removed."""
    rows = []
    for file, key in sorted(set(base) | set(head)):
        b, h = base.get((file, key)), head.get((file, key))
        value_b, value_h = (b or [None])[0], (h or [None])[0]
        figure, kind, higher = (h or b)[1:4]
        row = {"file": file, "key": key, "figure": figure, "kind": kind, "base": value_b, "head": value_h}
        if b is None or h is None:
            rows.append({**row, "verdict": "new" if b is None else "removed", "band": None})
            continue
        band = {"exact": 0.0, "compressed": COMPRESSED_BAND,
                "timing": max(b[4] or 0.0, h[4] or 0.0, FLOORS.get(figure, floor))}[kind]
        rel = (value_h - value_b) / abs(value_b) if value_b else (0.0 if value_h == value_b else float("inf"))
        if value_h == value_b:
            verdict = "same"
        elif abs(rel) <= band:
            verdict = "within noise"
        else:
            verdict = "better" if (value_h > value_b) == higher else "worse"
        rows.append({**row, "verdict": verdict, "band": band, "change": rel})
    return rows


def lock_stages(text: str) -> dict:
    return (yaml.safe_load(text) or {}).get("stages", {}) if text else {}


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def upstream(stages: dict, name: str) -> list:
    """The stage and every stage whose outputs it reads, directly or through others."""
    seen, todo = [], [name]
    while todo:
        s = todo.pop()
        if s in seen or s not in stages:
            continue
        seen.append(s)
        for dep in stages[s].get("deps", []):
            todo += [o for o, st in stages.items() if any(_overlaps(dep["path"], out["path"]) for out in st.get("outs", []))]
    return seen


def producer(stages: dict, path: str):
    return next((s for s, st in stages.items() if any(o["path"] == path for o in st.get("outs", []))), None)


def _outs(lock_stage: dict) -> dict:
    return {o["path"]: o.get("md5") for o in lock_stage.get("outs", [])}


def causes(base: dict, head: dict, stage: str) -> str:
    """What changed between the revisions in `stage` and upstream of it, as one clause: parameter
    values (leaves) first, then the code and data it reads that no stage writes."""
    written = [o["path"] for st in head.values() for o in st.get("outs", [])]
    params, files = {}, {}
    for s in upstream(head, stage):
        if s not in base:
            files[f"stage {s} (new)"] = None
            continue
        if s != stage and _outs(base[s]) == _outs(head[s]):
            continue  # wrote what it wrote before (the check stage's census): nothing it read reached `stage`
        params_b = {k: v for f in base[s].get("params", {}).values() for k, v in flatten(f).items()}
        for k, v in {k: v for f in head[s].get("params", {}).values() for k, v in flatten(f).items()}.items():
            if params_b.get(k) != v:
                params[k] = f"`{k}` {params_b.get(k)} → {v}"
        deps_b = {d["path"]: d.get("md5") for d in base[s].get("deps", [])}
        for d in head[s].get("deps", []):
            if not any(_overlaps(d["path"], w) for w in written) and deps_b.get(d["path"]) != d.get("md5"):
                files[d["path"]] = None
    shown = [f"`{f}`" for f in files][:5]
    more = f" (+{len(files) - 5})" if len(files) > 5 else ""
    clauses = list(params.values()) + ([f"changed: {', '.join(shown)}{more}"] if files else [])
    return "; ".join(clauses) or "no parameter, code or data change upstream in dvc.lock"


def census_change(base: dict, head: dict) -> str:
    """What changed in the data the pipeline measured (the check stage's census, metrics/check.json),
    as one clause: "val no_label_file 0 → 10"; empty when nothing did."""
    b, h = flatten(base.get("check.json") or {}), flatten(head.get("check.json") or {})
    changed = [f"{k.replace('.', ' ', 1)} {b.get(k, '–')} → {h.get(k, '–')}" for k in sorted(set(b) | set(h))
               if b.get(k) != h.get(k)]
    return f"the data: {', '.join(changed)}" if changed else ""


def fmt(value, kind: str) -> str:
    if value is None:
        return "–"
    if kind in ("exact", "compressed") and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}" if kind == "timing" else f"{value:.5g}"


def verdict_lines(rows: list, base_rev: str, why: dict) -> tuple:
    """(first lines, worse count): the verdict a reviewer reads first."""
    worse = [r for r in rows if r["verdict"] == "worse"]
    better = [r for r in rows if r["verdict"] == "better"]
    bands = [r["band"] for r in rows if r["kind"] == "timing" and r["band"] is not None]
    if not worse and not better:
        changed = [r for r in rows if r["verdict"] in ("new", "removed")]
        extra = f"; {len(changed)} figures new or removed" if changed else ""
        return [f"**Nothing changed beyond noise** against `{base_rev}` ({len(rows)} headline figures: accuracy, "
                f"ratios and sizes identical, speed-ups within their noise band of up to "
                f"{100 * max(bands, default=0):.0f}%){extra}."], 0
    lines = []
    for title, group in (("worse", worse), ("better", better)):
        if group:
            lines.append(f"**{len(group)} headline figure{'s' * (len(group) > 1)} {title} beyond noise** against "
                         f"`{base_rev}`:")
            by_cause = {}
            for r in group:
                by_cause.setdefault(why[(r["file"], r["key"])], []).append(r)
            for cause, figures in by_cause.items():
                lines.append(f"- because of {cause}:")
                lines += [f"  - {label(r)}: {fmt(r['base'], r['kind'])} → {fmt(r['head'], r['kind'])} "
                          f"({100 * r['change']:+.1f}%)" for r in figures]
    return lines, len(worse)


def label(r: dict) -> str:
    """`variant` figure, the variant being the key's middle part or the file's name."""
    parts = r["key"].split(".")
    where = parts[1] if r["key"].startswith("variants.") else parts[0] if len(parts) > 1 \
        else r["file"].rsplit(".", 1)[0]
    return f"`{where}` {r['figure']}"


def verdict_table(rows: list) -> list:
    order = {"worse": 0, "better": 1, "new": 2, "removed": 3, "within noise": 4, "same": 5}
    rows = sorted(rows, key=lambda r: order[r["verdict"]])

    def line(r):
        change = "–" if r.get("change") is None else f"{100 * r['change']:+.2f}%"
        band = "–" if r["band"] is None else f"±{100 * r['band']:.1f}%"
        return [label(r), fmt(r["base"], r["kind"]), fmt(r["head"], r["kind"]), change, band, f"**{r['verdict']}**"
                if r["verdict"] in ("worse", "better") else r["verdict"]]
    headers = ["figure", "base", "head", "change", "noise band", "verdict"]
    moved = [line(r) for r in rows if r["verdict"] != "same"]
    same = [line(r) for r in rows if r["verdict"] == "same"]
    out = [table(headers, moved), ""] if moved else []
    if same:
        out += folded(f"{len(same)} headline figures unchanged", table(headers, same))
    return out


def by_stage(metrics: dict) -> dict:
    """metrics_at's {path: data} keyed as the report keys them: `benchmark`, `prune/fast`, ..."""
    return {k.removesuffix(".json"): v for k, v in metrics.items()}


def target_lines(base: dict, head: dict, spec: dict, base_rev: str) -> tuple:
    """(lines, newly missed count): every target the head run misses (params.yaml's `targets`, as
    the report holds them), each said to be new or also missed at base. Only a newly missed target
    fails the check: one the base already missed is not this change's doing."""
    from posecompress.report.targets import MISSED, target_results, targets_of

    def missed(m):
        bm = m.get("benchmark") or {}
        return {(t["variant"], t["figure"], t["against"], t["bound"]): t
                for t in target_results(bm, targets_of(m, spec), spec["accuracy_floor"]) if t["state"] == MISSED}

    now, before = missed(head), missed(base)
    lines = []
    for key, t in now.items():
        bound = f"{t['bound']:g}× as fast as" if t["figure"] == "speed" else f"within {100 * t['bound']:.2f} points of"
        what = "speed" if t["figure"] == "speed" else f"pose {t['figure'].removeprefix('pose_')}"
        lines.append(f"- `{t['variant']}` {what} {bound} `{t['against']}`: "
                     f"{'also missed at' if key in before else '**newly missed**, met or absent at'} `{base_rev}`")
    new = sum(1 for k in now if k not in before)
    head_line = [f"**{len(now)} target{'s' * (len(now) != 1)} missed** (params.yaml's `targets`), {new} newly:"] if now else []
    return head_line + lines, new


def folded(summary: str, body: str) -> list:
    return [f"<details><summary>{summary}</summary>\n", body or "No change.", "\n</details>\n"]
