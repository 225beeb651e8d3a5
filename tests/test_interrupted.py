"""Runs that are killed half-way, and pipelines with zero recipes: nothing stray is left, and the
next `dvc repro` finishes with the same figures."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import make_project, run


def project_files(repo: Path) -> set:
    """Every file under outputs/ and the scratch folder, relative to the project."""
    return {str(p.relative_to(repo)) for folder in ("outputs", ".stage-tmp") for p in (repo / folder).rglob("*")
            if p.is_file()}


def test_sigkill_half_way_leaves_nothing_and_the_next_repro_matches(tmp_path, tiny_inputs, finished_project):
    done, _, _ = finished_project
    repo = make_project(tmp_path / "project", tiny_inputs)
    run(["dvc", "repro", "prune@fast"], repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    stage = subprocess.Popen(["dvc", "repro", "--single-item", "finetune@fast"], cwd=repo, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and stage.poll() is None:
        if any((repo / ".stage-tmp").glob("*-train.*/*")):  # Ultralytics' run folder: training under way
            break
        time.sleep(0.05)
    assert stage.poll() is None, "finetune ended before it could be killed"
    os.killpg(stage.pid, signal.SIGKILL)
    stage.wait()
    assert list((repo / ".stage-tmp").iterdir()), "the kill left no scratch files: it was not half-way"
    assert not (repo / "outputs" / "yolo" / "finetune").exists()

    run(["dvc", "repro", "--single-item", "finetune@fast"], repo)
    assert project_files(repo) == {"outputs/yolo/prune/fast/model.pt", "outputs/yolo/finetune/fast/model.pt"}
    assert not list((repo / ".stage-tmp").iterdir())
    metrics = "metrics/finetune/fast.json"
    assert json.loads((repo / metrics).read_text()) == json.loads((done / metrics).read_text())
    assert "finetune@fast" not in run(["dvc", "status", "finetune@fast"], repo).stdout


def test_zero_recipes_is_a_pipeline(tmp_path, tiny_inputs):
    """recipes: {}, classifier_recipes: {} and peers.formats: []: the baseline's stages, benchmark,
    system_eval and report run; benchmark and system_eval hold the baseline only."""
    repo = make_project(tmp_path / "project", tiny_inputs)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(recipes={}, classifier_recipes={})
    params["peers"]["formats"] = []
    params["system_eval"]["classifier_of"] = {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = run(["dvc", "repro"], repo)
    ran = {line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"check", "eval_baseline", "export_onnx_baseline", "quantize_baseline", "benchmark", "convert_tf",
                   "system_eval", "report"}
    bench = json.loads((repo / "metrics" / "benchmark.json").read_text())
    assert set(bench["variants"]) == {"pytorch_baseline", "onnx_baseline", "int8_baseline"}
    system = json.loads((repo / "metrics" / "system_eval.json").read_text())
    assert list(system) == ["baseline"]
    assert (repo / "report" / "report.md").is_file()
