"""Reviewing and sharing, with a real `dvc` on tiny inputs: metric diffs between commits, the
report, a remote served read-only over HTTP on 127.0.0.1, the run-cache, and experiments.

The session's finished tiny run (conftest's finished_project) is pushed to a local remote; every
test works in its own `git clone` of it, as a colleague would.
"""
import csv
import functools
import json
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.conftest import ROOT, git_clone, run


@pytest.fixture(scope="module")
def finished(finished_project):
    """(repo, remote) of the session's finished tiny run."""
    repo, remote, _ = finished_project
    return repo, remote


def metrics_at(repo, rev) -> dict:
    """{(file, dotted key): value} of every metrics JSON committed at rev."""
    files = run(["git", "ls-tree", "-r", "--name-only", rev, "metrics"], repo).stdout.split()
    out = {}
    for f in (f for f in files if f.endswith(".json")):  # not metrics/peer/.gitkeep
        data = json.loads(run(["git", "show", f"{rev}:{f}"], repo).stdout)
        stack = [("", data)]
        while stack:
            prefix, node = stack.pop()
            for k, v in node.items():
                if isinstance(v, dict):
                    stack.append((f"{prefix}{k}.", v))
                else:
                    out[(f, f"{prefix}{k}")] = v
    return out


def test_metrics_diff_shows_exactly_what_a_parameter_change_did(finished, tmp_path):
    repo, _ = finished
    clone = git_clone(repo, tmp_path / "clone")
    run(["dvc", "pull", "-q"], clone)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    # a parameter that re-runs eval_baseline (and the report) only; the check reads every parameter,
    # so it re-runs too, in seconds, and its unchanged census leaves everything else alone
    params["eval_baseline"]["imgsz"] += 32
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = run(["dvc", "repro"], clone)
    ran = {line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"check", "eval_baseline", "report"}, res.stdout
    run(["git", "commit", "-qam", "larger eval size"], clone)

    before, after = metrics_at(clone, "HEAD~1"), metrics_at(clone, "HEAD")
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert ("metrics/eval_baseline.json", "gflops") in changed  # GFLOPs grow with the image size
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD~1", "HEAD", "--json"], clone).stdout)
    shown = {(f, k) for f, keys in diff.items() for k in keys}
    assert shown == changed
    for f, k in shown:
        assert diff[f][k]["old"] == before.get((f, k)) and diff[f][k]["new"] == after.get((f, k))
    pdiff = json.loads(run(["dvc", "params", "diff", "HEAD~1", "HEAD", "--json"], clone).stdout)
    assert list(pdiff) == ["params.yaml"] and list(pdiff["params.yaml"]) == ["eval_baseline.imgsz"]
    assert pdiff["params.yaml"]["eval_baseline.imgsz"]["new"] == params["eval_baseline"]["imgsz"]

    # the review copy: the verdict, then both diffs in full, folded; STAMP= skips the venv build
    run(["make", "report", "BASE=HEAD~1", "STAMP="], clone)
    pr = (clone / "report" / "pr.md").read_text()
    assert pr.startswith("# Pull request report: this tree against `HEAD~1`")
    md = pr.split("## Everything else")[1]
    assert "| Path" in md and "gflops" in md and "| eval_baseline.imgsz" in md
    assert md.rstrip().endswith("</details>") and (clone / "report" / "report.md").read_text() in md


def test_report_tells_this_runs_numbers(finished):
    repo, _ = finished
    report = (repo / "report" / "report.md").read_text()
    base = json.loads((repo / "metrics" / "eval_baseline.json").read_text())
    assert f"mAP50-95 {100 * base['pose_map50_95']:.2f}%" in report
    assert "(study: mAP50 81.80%, mAP50-95 37.99%)" in report
    for link in [ln.split("](")[1].rstrip(")") for ln in report.splitlines() if ln.startswith("![")]:
        assert (repo / "report" / link).is_file(), link
    assert (repo / "report" / "figures" / "study_comparison.png").is_file()


def test_report_shows_other_baselines_recorded_runs(finished, tmp_path):
    """A run recorded under results/<name>/metrics gets its rows beside this run's, figures from its files."""
    import shutil

    from posecompress.report.document import build_report, recorded_runs

    repo, _ = finished
    assert recorded_runs(tmp_path / "results") == {}  # no folder: no section
    other = tmp_path / "results" / "yolo26n-pose" / "metrics"
    shutil.copytree(repo / "metrics", other)
    q = json.loads((other / "benchmark.json").read_text())
    q["variants"]["int8_fast"]["speedup_vs_onnx_fp32"] = 7.25
    (other / "benchmark.json").write_text(json.dumps(q))
    text = build_report(repo / "metrics", repo / "plots", tmp_path / "figures", recorded_runs(tmp_path / "results"))
    section = text.split("## Other baselines")[1].split("\n## ")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    this = json.loads((repo / "metrics" / "eval_baseline.json").read_text())["architecture"]
    assert [r.split("|")[1].strip() for r in rows] == [f"`{this} (this run)`"] * 3 + ["`yolo26n-pose`"] * 3
    assert "| `yolo26n-pose` | `fast` |" in section and "7.25×" in section
    assert "## Other baselines" not in build_report(repo / "metrics", repo / "plots", tmp_path / "f2", {})


def test_report_draws_fine_tune_curves_beside_recorded_ones(finished, tmp_path):
    """Every recipe's mAP50-95 per epoch, this run's and a recorded run's (results/<name>/plots), in
    one figure the report links; a run recorded without metrics adds a curve but no baseline rows."""
    import csv

    from posecompress.report.document import FINETUNE_Y, build_report, recorded_runs

    repo, _ = finished
    with (repo / "plots" / "finetune" / "fast.csv").open() as f:
        ours = list(csv.DictReader(f))
    assert ours and all(r[FINETUNE_Y] for r in ours)
    old = tmp_path / "results" / "fast-longer" / "plots" / "finetune"
    old.mkdir(parents=True)
    with (old / "fast.csv").open("w", newline="") as f:  # the same columns, three epochs
        w = csv.DictWriter(f, fieldnames=list(ours[0]))
        w.writeheader()
        w.writerows({**ours[0], "epoch": str(e)} for e in (1, 2, 3))
    runs = tmp_path / "results"
    text = build_report(repo / "metrics", repo / "plots", tmp_path / "figures", recorded_runs(runs), runs=runs)
    assert "![fine-tune curves](figures/finetune_curves.png)" in text
    assert "recorded runs' " in text and (tmp_path / "figures" / "finetune_curves.png").is_file()
    assert recorded_runs(runs) == {} and "## Other baselines" not in text


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder read-only (GET/HEAD only) and records the paths asked for."""
    requested = []

    def log_message(self, fmt, *args):
        QuietHandler.requested.append(self.path)


@pytest.fixture
def http_remote(finished):
    """The local remote served read-only over HTTP on 127.0.0.1, on a free port."""
    _, remote = finished
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(remote)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    QuietHandler.requested = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fresh_clone_pulls_over_http_and_recomputes_nothing(finished, http_remote, tmp_path):
    repo, _ = finished
    clone = git_clone(repo, tmp_path / "clone")
    run(["dvc", "remote", "add", "-d", "http", http_remote], clone)
    run(["dvc", "remote", "remove", "local"], clone)  # nothing but HTTP to pull from
    run(["dvc", "pull"], clone)
    assert any(p.startswith("/files/md5/") for p in QuietHandler.requested)
    assert (clone / "data" / "models" / "yolo_pose.pt").is_file()
    status = run(["dvc", "status"], clone)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    again = run(["dvc", "repro"], clone)
    assert "Running stage" not in again.stdout and "didn't change, skipping" in again.stdout, again.stdout


def test_fresh_clone_restores_stages_from_the_run_cache(finished, tmp_path):
    repo, remote = finished
    clone = git_clone(repo, tmp_path / "clone", rev="HEAD~1")  # the commit before the run: no dvc.lock
    assert not (clone / "dvc.lock").exists() and not list((clone / "metrics").rglob("*.json"))
    run(["dvc", "remote", "add", "-d", "local", str(remote)], clone)
    run(["dvc", "pull", "--run-cache", "data.dvc"], clone)  # the run records and the inputs
    res = run(["dvc", "repro", "--pull"], clone)  # --pull: fetch what the run-cache entries name
    stages = set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    restored = {line.split("'")[1] for line in res.stdout.splitlines() if "is cached - skipping run" in line}
    ran = {line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage")}
    # DVC keeps no run-cache for a stage with `cache: false` outputs other than metrics and
    # plots: the report, which is in git, is written again (in seconds), the same
    assert restored == stages - {"report"} and ran == {"report"}, res.stdout
    for f in run(["git", "ls-files", "metrics", "report"], repo).stdout.split():
        assert (clone / f).read_bytes() == (repo / f).read_bytes(), f
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone).stdout


def test_fresh_clone_with_part_of_the_outputs_pulls_and_recomputes_only_the_rest(finished, tmp_path):
    """The bundled remote's way (docs/sharing.md, "A fresh clone"): the inputs and the slow stages' outputs
    pushed, the rest left out; `dvc pull --allow-missing` exits 0 and `dvc repro` recomputes only
    what was left out, the pushed stages staying as they are."""
    repo, _ = finished
    remote, kept = tmp_path / "partial-remote", ("prune@fast", "finetune@fast")
    run(["dvc", "push", "-r", "local", "data.dvc", *kept], repo)  # to the full remote: nothing new
    run(["dvc", "remote", "add", "partial", str(remote)], repo)
    try:
        run(["dvc", "push", "-r", "partial", "data.dvc", *kept], repo)
    finally:
        run(["dvc", "remote", "remove", "partial"], repo)
    clone = git_clone(repo, tmp_path / "clone")
    run(["dvc", "remote", "modify", "local", "url", str(remote)], clone)
    assert run(["dvc", "pull"], clone, check=False).returncode != 0  # outputs left out: plain pull says so
    run(["dvc", "pull", "--allow-missing"], clone)
    assert (clone / "outputs" / "yolo" / "finetune" / "fast" / "model.pt").is_file()
    assert not (clone / "outputs" / "yolo" / "onnx" / "fast.onnx").exists()
    res = run(["dvc", "repro"], clone)
    ran = {line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage")}
    assert not ran & set(kept) and "export_onnx@fast" in ran, res.stdout
    tuned = "metrics/finetune/fast.json"
    assert (clone / tuned).read_bytes() == (repo / tuned).read_bytes()
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone).stdout


def test_experiment_with_a_set_parameter_and_the_plot_across_experiments(finished, tmp_path):
    repo, _ = finished
    clone = git_clone(repo, tmp_path / "clone")
    run(["dvc", "pull", "-q"], clone)
    imgsz = yaml.safe_load((clone / "params.yaml").read_text())["eval_baseline"]["imgsz"]
    run(["dvc", "exp", "run", "-n", "bigger", "-S", f"eval_baseline.imgsz={imgsz + 32}"], clone)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], clone).stdout)
    exps = [r for c in shown for e in (c.get("experiments") or []) for r in e["revs"]]
    assert [e["name"] for e in exps] == ["bigger"]
    out = tmp_path / "plot" / "exp.png"
    run([sys.executable, "-m", "tools.exp_plot", "--x", "metrics/eval_baseline.json:gflops",
         "--y", "metrics/eval_baseline.json:pose_map50_95", "--out", str(out)], clone)
    rows = (out.with_suffix(".csv")).read_text().splitlines()
    assert rows[0].split(",")[:4] == ["experiment", "rev", "x", "y"] and "eval_baseline.imgsz" in rows[0]
    by_name = {r.split(",")[0]: r.split(",") for r in rows[1:]}
    assert len(by_name) == 2 and "bigger" in by_name  # the commit (named by its branch) and the experiment
    assert float(by_name["bigger"][2]) > float(by_name[next(n for n in by_name if n != "bigger")][2])
    assert out.stat().st_size > 0


def test_queued_experiments_run_two_at_a_time_and_make_a_frontier(finished, tmp_path):
    """The README's sweep: two levels of pruning queued, `dvc queue start --jobs 2`, their
    metrics read with `dvc exp show --json`, drawn by tools.exp_plot, written as a frontier by
    tools.frontier and drawn in the report beside the comparison variants."""
    repo, _ = finished
    clone = git_clone(repo, tmp_path / "clone")
    run(["dvc", "pull", "-q"], clone)
    cuts = [0.1, 0.3]  # both beside the commit's own 0.2
    run(["dvc", "exp", "run", "--queue", "-S",
         f"recipes.fast.prune.gflops_reduction={','.join(map(str, cuts))}"], clone)
    run(["dvc", "queue", "start", "--jobs", "2"], clone)
    for _ in range(900):  # the workers run in the background: wait for them, 15 min at most
        status = run(["dvc", "queue", "status"], clone).stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(1)
    assert status.count("Success") == len(cuts), status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], clone).stdout)
    exps = [r for c in shown for e in (c.get("experiments") or []) for r in e["revs"]]
    got = sorted(e["data"]["params"]["params.yaml"]["data"]["recipes"]["fast"]["prune"]["gflops_reduction"]
                 for e in exps)
    assert got == cuts
    out = tmp_path / "plot" / "exp.png"
    run([sys.executable, "-m", "tools.exp_plot", "--x", "metrics/prune/fast.json:gflops",
         "--y", "metrics/benchmark.json:variants.int8_fast.pose_map50_95", "--out", str(out)], clone)
    rows = out.with_suffix(".csv").read_text().splitlines()[1:]
    assert len(rows) == 1 + len(cuts) and out.stat().st_size > 0  # the commit and the experiments
    names = {e["name"] for e in exps}
    gflops = [float(r.split(",")[2]) for r in rows if r.split(",")[0] in names]
    assert len(set(gflops)) == len(cuts)  # each experiment pruned to its own level

    runs = tmp_path / "results"
    front = runs / "sweep" / "frontier.csv"
    res = run([sys.executable, "-m", "tools.frontier", "--out", str(front)], clone)
    assert f"{len(cuts)} experiments" in res.stdout, res.stdout
    with front.open() as f:
        table = list(csv.DictReader(f))
    sweep = [r for r in table if r["kind"] == "sweep"]
    by_cut = {float(r["recipes.fast.prune.gflops_reduction"]): r for r in sweep}
    assert sorted(by_cut) == cuts
    assert float(by_cut[0.1]["gflops"]) > float(by_cut[0.3]["gflops"])  # more cut, fewer GFLOPs
    peers = {r["point"] for r in table if r["kind"] == "peer"}
    assert {"onnx_baseline", "int8_baseline", "ultralytics_openvino_int8"} <= peers, peers
    for r in sweep:  # each point is its experiment's own int8_fast figures
        bench = next(e for e in exps if e["name"] == r["point"])["data"]["metrics"]["metrics/benchmark.json"]["data"]
        assert float(r["pose_map50_95"]) == bench["variants"]["int8_fast"]["pose_map50_95"]
    report = tmp_path / "report"
    run([sys.executable, "-m", "stages.report", "--metrics", "metrics", "--plots", "plots",
         "--out", str(report / "report.md"), "--figures", str(report / "figures"), "--runs", str(runs)], clone)
    text = (report / "report.md").read_text()
    assert "## Frontier: accuracy against latency" in text
    assert (report / "figures" / "frontier_sweep.png").stat().st_size > 0
    for r in sweep:
        assert f"| {r['point']} | {r['recipes.fast.prune.gflops_reduction']} |" in text
    # experiments of different sweeps cannot share one frontier's axes
    mixed = tmp_path / "mixed.json"
    for e in exps[:1]:
        e["data"]["params"]["params.yaml"]["data"]["benchmark"]["imgsz"] = [1, 1]
    mixed.write_text(json.dumps(shown))
    res = run([sys.executable, "-m", "tools.frontier", "--json-file", str(mixed), "--out", str(tmp_path / "x.csv")],
              clone, check=False)
    assert res.returncode != 0 and "benchmark.imgsz" in res.stderr and not (tmp_path / "x.csv").exists(), res.stderr


SWEEPS = {"recipes.fast.prune.gflops_reduction": ("prune@fast", 0.3),
          "recipes.fast.finetune.epochs": ("finetune@fast", 2),
          "recipes.reference.quantize.mode": ("quantize@reference", "static"),
          "recipes.fast.quantize.calibration_images": ("quantize@fast", 3)}


@pytest.mark.parametrize("name", SWEEPS)
def test_a_swept_parameter_changes_its_own_stage_only(finished, name):
    """What `dvc exp run -S <name>=<value>` would re-run first: the stage reading the parameter."""
    repo, _ = finished
    stage, value = SWEEPS[name]
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    node = params
    *path, leaf = name.split(".")
    for key in path:
        node = node[key]
    assert leaf in node, f"{name} is not in params.yaml"
    node[leaf] = value
    try:
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    finally:
        params_file.write_text(original)
    assert any("params.yaml" in (entry.get("changed deps") or {}) for entry in status.get(stage, [])
               if isinstance(entry, dict)), status
    # no other recipe's stages and no earlier step of this recipe change (a stage that lists
    # every recipe, e.g. to know their names, may change too)
    kind, recipe = stage.split("@")
    steps = ["prune", "finetune", "export_onnx", "quantize"]
    untouched = {f"{k}@{r}" for k in steps for r in params["recipes"] if r != recipe}
    untouched |= {f"{k}@{recipe}" for k in steps[:steps.index(kind)]}
    assert not untouched & set(status), status


def test_report_leaves_out_what_is_absent_and_rejects_a_missing_folder(tmp_path):
    metrics = tmp_path / "metrics"
    (metrics / "quantize").mkdir(parents=True)
    (metrics / "quantize" / "x.json").write_text(json.dumps(
        {"mode": "static", "conv_total": 10, "conv_quantized": 7, "pose_map50": 0.5, "pose_map50_95": 0.25}))
    out = tmp_path / "report" / "report.md"
    cmd = [sys.executable, "-m", "stages.report", "--metrics", str(metrics), "--plots", str(tmp_path / "none"),
           "--out", str(out), "--figures", str(out.parent / "figures")]
    run(cmd, ROOT)
    text = out.read_text()
    assert "**7 of 10 Conv layers quantized**" in text and "mAP50-95 25.00%" in text
    assert "## YOLO pose: baseline" not in text and "YOLO pose: baseline" in text.split("Left out")[1]
    bad = subprocess.run(cmd[:4] + [str(tmp_path / "nowhere")] + cmd[5:], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: metrics folder")
