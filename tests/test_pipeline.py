"""End to end: `dvc repro` of the whole pipeline in a fresh repository on tiny inputs, then
nothing left to recompute."""
import json

import pytest
import yaml

from tests.conftest import ACCURACY, ROUNDING, run, ultralytics_accuracy


def test_dvc_repro_runs_every_stage_on_tiny_inputs(finished_project, tmp_path):
    repo, _, first = finished_project
    stages = set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    ran = {line.split("'")[1] for line in first.splitlines() if line.startswith("Running stage")}
    assert ran == stages and {"eval_baseline", "prune@fast", "quantize@reference", "peer@onnx_int8",
                              "peer@openvino_fp32", "peer@openvino_int8", "benchmark", "convert_tf",
                              "system_eval", "report"} <= stages
    # quantize writes a folder: onnxruntime's INT8 file (reference: dynamic) or an OpenVINO IR (fast)
    quantize = repo / "outputs" / "yolo" / "quantize"
    assert [p.name for p in (quantize / "reference").iterdir()] == ["int8.onnx"]
    assert {p.name for p in (quantize / "fast" / "int8_openvino_model").iterdir()} == {"int8.xml", "int8.bin",
                                                                                        "metadata.yaml"}
    bench = json.loads((repo / "metrics" / "benchmark.json").read_text())
    assert bench["variants"]["int8_fast"]["runtime"] == "openvino"
    assert {f"ultralytics_{f}" for f in ("onnx_int8", "openvino_fp32", "openvino_int8")} <= set(bench["variants"])
    m = json.loads((repo / "metrics" / "eval_baseline.json").read_text())
    assert {*ACCURACY, "params", "gflops"} <= set(m)
    # what Ultralytics' validator gives the baseline the pipeline names, at eval_baseline's settings
    params = yaml.safe_load((repo / "params.yaml").read_text())
    want = ultralytics_accuracy(repo / params["baseline"]["model"], repo / "data" / "pose" / "pose.yaml",
                                params["eval_baseline"]["imgsz"], params["eval_baseline"]["batch"], tmp_path)
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)


def test_second_repro_recomputes_nothing_and_status_is_clean(finished_project):
    repo, _, _ = finished_project
    again = run(["dvc", "repro"], repo)
    assert "didn't change, skipping" in again.stdout and "Running stage" not in again.stdout
    assert "up to date" in run(["dvc", "status"], repo).stdout
    # the label caches Ultralytics writes into data/ do not make the tracked inputs dirty
    assert list((repo / "data" / "pose" / "labels").glob("*.cache"))
