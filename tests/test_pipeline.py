"""End to end: `dvc repro` in a fresh clone on tiny inputs, then nothing left to recompute."""
import json

from tests.conftest import run


def test_dvc_repro_on_tiny_inputs(project_clone):
    run(["dvc", "repro"], project_clone)
    m = json.loads((project_clone / "metrics" / "eval_baseline.json").read_text())
    assert {"pose_map50", "pose_map50_95", "box_map50", "box_map50_95", "params", "gflops"} <= set(m)
    assert 0 <= m["pose_map50_95"] <= m["pose_map50"] <= 1
    again = run(["dvc", "repro"], project_clone)
    assert "didn't change, skipping" in again.stdout and "Running stage" not in again.stdout
    status = run(["dvc", "status"], project_clone)
    assert "up to date" in status.stdout, status.stdout
    # the label caches Ultralytics writes into data/ do not make the tracked inputs dirty
    assert list((project_clone / "data" / "pose" / "labels").glob("*.cache"))
