"""benchmark on a handful of images: every variant of the baseline and one recipe, every key."""
import csv
import json
import shutil
import sys

import pytest
import yaml

from tests.conftest import ROOT, run
from tests.test_export_quantize import DYNAMIC, EXPORT, STATIC, export_stage, quantize_stage

KEYS = {"kind", "runtime", "float_precision", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90",
        "latency_ms_min", "speedup_vs_onnx_fp32", "speedup_vs_best_fp32", "speedup_vs_pytorch", "size_bytes",
        "zip_bytes", "zip_ratio", "size_reduction", "size_of", "pose_map50", "pose_map50_95"}
BENCH = {"imgsz": [96, 128], "images": 3, "warmup": 1, "threads": 1, "statistic": "min"}


@pytest.fixture(scope="module")
def layout(tmp_path_factory, tiny_data, tiny_yolo):
    """The stage outputs the benchmark reads: baseline + recipe `tiny` (the tiny model again,
    quantized dynamically), as export_onnx and quantize write them: exported at 64 x 64 with a
    dynamic H x W, as shipped; quantize's output folders. No peers (test_openvino.py times them)."""
    root = tmp_path_factory.mktemp("bench")
    data = tiny_data / "pose" / "pose.yaml"
    _, onnx_file, export_metrics = export_stage(root / "export", tiny_yolo, data, {**EXPORT, "dynamic": True})
    for d in LAYOUT:
        (root / d).mkdir(parents=True)
    # the recipe's checkpoint: the same weights in float32, as the fine-tune saves them
    from posecompress.yolo.models import load_pose_model
    from posecompress.yolo.pruning import save_checkpoint

    save_checkpoint(load_pose_model(tiny_yolo).model, root / "finetune" / "tiny" / "model.pt", {}, {})
    for name in ("baseline", "tiny"):
        shutil.copy(onnx_file, root / "onnx" / f"{name}.onnx")
        shutil.copy(export_metrics, root / "export_metrics" / f"{name}.json")
    for name, settings in (("baseline", STATIC), ("tiny", DYNAMIC)):
        _, out, metrics = quantize_stage(root / "q", root / "onnx" / f"{name}.onnx", data, settings,
                                         recipe=None if name == "baseline" else name)
        shutil.copytree(out, root / "int8" / name)
        shutil.copy(metrics, root / "quantize_metrics" / f"{name}.json")
    return root


# the folders of a benchmark layout: what dvc.yaml hands the stage, one {name} each
LAYOUT = ("finetune/tiny", "onnx", "export_metrics", "int8", "quantize_metrics", "peer", "peer_metrics")


def bench(root, out, data, baseline, params, check=True):
    """The benchmark on a layout (LAYOUT under `root`) with these params; `recipes: {}` (the
    baseline only) and `peers.formats: []` unless params say otherwise."""
    (out / "params.yaml").write_text(yaml.safe_dump({"recipes": {}, "peers": {"formats": []}, **params}))
    metrics, plot = out / "metrics" / "benchmark.json", out / "plots" / "variants.csv"
    res = run([sys.executable, "-m", "stages.benchmark", "--baseline", str(baseline),
               "--finetuned", str(root / "finetune" / "{name}" / "model.pt"), "--onnx", str(root / "onnx" / "{name}.onnx"),
               "--int8", str(root / "int8" / "{name}"), "--export-metrics", str(root / "export_metrics" / "{name}.json"),
               "--quantize-metrics", str(root / "quantize_metrics" / "{name}.json"),
               "--peer", str(root / "peer" / "{name}"), "--peer-metrics", str(root / "peer_metrics" / "{name}.json"),
               "--data", str(data), "--metrics", str(metrics), "--plot", str(plot), "--params", str(out / "params.yaml")],
              ROOT, check=check)
    return res, metrics, plot


def test_benchmark_writes_every_variant_and_key(tmp_path, layout, tiny_data, tiny_yolo):
    res, metrics, plot = bench(layout, tmp_path, tiny_data / "pose" / "pose.yaml", tiny_yolo,
                               {"benchmark": BENCH, "recipes": {"tiny": {}}})
    m = json.loads(metrics.read_text())
    assert m["images"] == 3 and m["statistic"] == "min"
    assert m["best_fp32"] in ("pytorch_baseline", "onnx_baseline")  # the baseline's FP32 forms timed here
    assert m["imgsz"] == [96, 128] and m["accuracy_imgsz"] == [64, 64]  # timed at another size than validated
    names = {f"{kind}_{model}" for kind in ("pytorch", "onnx", "int8") for model in ("baseline", "tiny")}
    assert set(m["variants"]) == names
    best = m["variants"][m["best_fp32"]]
    for name, r in m["variants"].items():
        assert set(r) == KEYS, name
        assert r["runtime"] == ("pytorch" if r["kind"] == "pytorch" else "onnxruntime") and r["float_precision"] == "f32"
        assert r["speedup_vs_best_fp32"] == pytest.approx(best["latency_ms_min"] / r["latency_ms_min"], rel=1e-3)
        assert 0 < r["latency_ms_min"] <= r["latency_ms_p50"] <= r["latency_ms_p90"]
        assert 0 < r["zip_bytes"] < r["size_bytes"] and r["zip_ratio"] == pytest.approx(
            100 * r["zip_bytes"] / r["size_bytes"], rel=1e-3)
        assert 0 <= r["pose_map50_95"] <= r["pose_map50"] <= 1
    # PyTorch rows compare their float32 weights: the baseline's half-precision file and the recipe's
    # float32 one hold the same weights, so the same size
    pt_base, pt_tiny = m["variants"]["pytorch_baseline"], m["variants"]["pytorch_tiny"]
    assert (layout / "finetune" / "tiny" / "model.pt").stat().st_size > 1.5 * tiny_yolo.stat().st_size
    assert pt_base["size_of"] == "float32 weights" and pt_base["size_bytes"] == pt_tiny["size_bytes"]
    assert {r["size_of"] for n, r in m["variants"].items() if not n.startswith("pytorch_")} == {"file"}
    base = m["variants"]["onnx_baseline"]
    assert base["speedup_vs_onnx_fp32"] == 1 and base["size_reduction"] == 0
    assert m["variants"]["pytorch_baseline"]["speedup_vs_pytorch"] == 1
    assert best["speedup_vs_best_fp32"] == 1
    assert all(best["latency_ms_min"] <= m["variants"][n]["latency_ms_min"] for n in ("pytorch_baseline", "onnx_baseline"))
    int8 = m["variants"]["int8_baseline"]
    assert (int8["kind"], m["variants"]["int8_tiny"]["kind"]) == ("onnx_int8", "onnx_int8")
    assert int8["size_reduction"] == pytest.approx(100 * (1 - int8["zip_bytes"] / base["zip_bytes"]), abs=1e-3)
    assert int8["speedup_vs_onnx_fp32"] == pytest.approx(base["latency_ms_min"] / int8["latency_ms_min"], rel=1e-3)
    rows = list(csv.DictReader(plot.open()))
    assert {r["variant"] for r in rows} == names
    assert all(float(r["speedup_vs_best_fp32"]) > 0 for r in rows)
    assert all(float(r["latency_ms_min"]) > 0 and r["pose_map50_95"] for r in rows)
    assert "benchmark" in res.stderr  # the progress bar


@pytest.mark.parametrize("params, message", [
    # a recipe with no outputs: its INT8 folder is looked up first (exported_model)
    ({"benchmark": BENCH, "recipes": {"missing": {}}}, "model (int8_missing) "),
    ({"benchmark": {**BENCH, "statistic": "max"}}, "parameter benchmark.statistic: 'max' is not one of"),
    ({"benchmark": {**BENCH, "threads": 0}}, "parameter benchmark.threads: 0 is below 1"),
    ({"benchmark": {**BENCH, "imgsz": [96, 100]}}, "parameter benchmark.imgsz: expected [h, w]"),
    ({"benchmark": BENCH, "peers": {"formats": "onnx_int8"}}, "parameter peers.formats: expected list"),
    ({"benchmark": BENCH, "peers": {"formats": ["openvino_int8"]}}, "peer/openvino_int8: not found"),
])
def test_benchmark_bad_input_stops_before_work(tmp_path, layout, tiny_data, tiny_yolo, params, message):
    res, metrics, plot = bench(layout, tmp_path, tiny_data / "pose" / "pose.yaml", tiny_yolo, params, check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and message in lines[0], res.stderr
    assert not metrics.exists() and not plot.exists()


def test_benchmark_rejects_a_static_export_of_another_size(tmp_path, layout, tiny_data, tiny_yolo):
    data = tiny_data / "pose" / "pose.yaml"
    root = tmp_path / "layout"
    shutil.copytree(layout, root)
    _, static, _ = export_stage(tmp_path / "export", tiny_yolo, data)  # 1x3x64x64, fixed
    shutil.copy(static, root / "onnx" / "baseline.onnx")
    res, metrics, plot = bench(root, tmp_path, data, tiny_yolo, {"benchmark": BENCH}, check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "onnx/baseline.onnx: static input shape [64, 64] cannot run at benchmark.imgsz [96, 128]" in lines[0]
    assert "export_onnx.dynamic: true" in lines[0]
    assert not metrics.exists() and not plot.exists()
    res, metrics, _ = bench(root, tmp_path, data, tiny_yolo, {"benchmark": {**BENCH, "imgsz": [64, 64]}})
    assert json.loads(metrics.read_text())["imgsz"] == [64, 64]  # at its own size it runs
