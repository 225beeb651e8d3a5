"""benchmark on a handful of images: every variant of the baseline and one recipe, every key."""
import csv
import json
import os
import shutil

import pytest

from tests.conftest import (BENCH, DYNAMIC, EXPORT, KEYS, LAYOUT, STATIC, THROUGHPUT_KEYS, bench, export_stage,
                            quantize_stage)

CORES = len(os.sched_getaffinity(0))


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
    from posecompress.yolo.checkpoint import save_checkpoint

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


def with_own_accuracies(layout, dest):
    """The layout at `dest`, its model folders linked, every export and quantize metrics file with
    accuracies of its own: the tiny model scores 0 in all, where a row showing another file's
    figures would pass unseen."""
    dest.mkdir()
    for d in ("finetune", "onnx", "int8", "peer", "peer_metrics"):
        (dest / d).symlink_to(layout / d)
    files = [f for d in ("export_metrics", "quantize_metrics") for f in sorted((layout / d).glob("*.json"))]
    for i, f in enumerate(files, 1):
        (dest / f.parent.name).mkdir(exist_ok=True)
        m = json.loads(f.read_text())
        (dest / f.parent.name / f.name).write_text(json.dumps({**m, "pose_map50": i / 10, "pose_map50_95": i / 20}))
    return dest


def test_benchmark_writes_every_variant_and_key(tmp_path, layout, tiny_data, tiny_yolo):
    root = with_own_accuracies(layout, tmp_path / "layout")
    res, metrics, plot = bench(root, tmp_path, tiny_data / "pose" / "pose.yaml", tiny_yolo,
                               {"benchmark": BENCH, "recipes": {"tiny": {}}})
    m = json.loads(metrics.read_text())
    assert m["images"] == 3 and m["statistic"] == "min"
    assert m["best_fp32"] in ("pytorch_baseline", "onnx_baseline")  # the baseline's FP32 forms timed here
    assert m["imgsz"] == [96, 128] and m["accuracy_imgsz"] == [64, 64]  # timed at another size than validated
    names = {f"{kind}_{model}" for kind in ("pytorch", "onnx", "int8") for model in ("baseline", "tiny")}
    assert set(m["variants"]) == names
    best = m["variants"][m["best_fp32"]]
    for name, r in m["variants"].items():
        assert set(r) == (KEYS if r["kind"] == "pytorch" else KEYS | THROUGHPUT_KEYS), name
        assert r["runtime"] == ("pytorch" if r["kind"] == "pytorch" else "onnxruntime") and r["float_precision"] == "f32"
        assert r["speedup_vs_best_fp32"] == pytest.approx(best["latency_ms_min"] / r["latency_ms_min"], rel=1e-3)
        assert 0 < r["latency_ms_min"] <= r["latency_ms_p50"] <= r["latency_ms_p90"]
        assert 0 < r["zip_bytes"] < r["size_bytes"] and r["zip_ratio"] == pytest.approx(
            100 * r["zip_bytes"] / r["size_bytes"], rel=1e-3)
        # a PyTorch row's accuracy is its ONNX export's (stages/benchmark.py: variants), an INT8 row's its own
        model = name.split("_", 1)[1]
        source = root / ("quantize_metrics" if r["kind"].endswith("_int8") else "export_metrics") / f"{model}.json"
        want = json.loads(source.read_text())
        assert (r["pose_map50"], r["pose_map50_95"]) == (want["pose_map50"], want["pose_map50_95"]), name
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


def test_benchmark_measures_throughput_on_every_core(tmp_path, layout, tiny_data, tiny_yolo):
    """The all-cores pass beside the 1-thread latencies: its keys on every variant but PyTorch's,
    its speed-ups the ratios of its images/second, its figures in the CSV and the report's table."""
    from posecompress.report.markdown import DASH, mb
    from posecompress.report.sections import variants_table

    res, metrics, plot = bench(layout, tmp_path, tiny_data / "pose" / "pose.yaml", tiny_yolo,
                               {"benchmark": BENCH, "recipes": {"tiny": {}}})
    m = json.loads(metrics.read_text())
    assert (m["threads"], m["throughput_threads"], m["throughput_images"]) == (1, CORES, 4)
    assert m["throughput_passes"] == 3 and isinstance(m["noise_band_throughput"], float)
    rows = m["variants"]
    measured = {n: r for n, r in rows.items() if r["kind"] != "pytorch"}
    assert set(measured) == {"onnx_baseline", "int8_baseline", "onnx_tiny", "int8_tiny"}
    assert not any(k.startswith("throughput") or "_throughput_" in k for k in rows["pytorch_baseline"])
    base, best = measured["onnx_baseline"], measured[m["best_fp32_throughput"]]
    # the fastest FP32 form of the baseline by throughput, PyTorch having none: onnx_baseline here
    assert m["best_fp32_throughput"] == "onnx_baseline" and base["speedup_throughput_vs_onnx_fp32"] == 1
    for name, r in measured.items():
        fps = r["throughput_fps"]
        assert fps > 0 and (r["throughput_streams"], r["throughput_requests"]) == (1, 1), name
        assert r["speedup_throughput_vs_onnx_fp32"] == pytest.approx(fps / base["throughput_fps"], rel=1e-3)
        assert r["speedup_throughput_vs_best_fp32"] == pytest.approx(fps / best["throughput_fps"], rel=1e-3)
    # the latency keys are the 1-thread pass's alone: throughput moved none of them
    assert all(r["speedup_vs_onnx_fp32"] == pytest.approx(base["latency_ms_min"] / r["latency_ms_min"], rel=1e-3)
               for r in rows.values())
    csv_rows = {r["variant"]: r for r in csv.DictReader(plot.open())}
    for name, r in rows.items():
        got = csv_rows[name]["throughput_fps"]
        assert (float(got) == pytest.approx(r["throughput_fps"], rel=1e-4)) if name in measured else got == "", name
    assert "throughput" in res.stderr and "noise_band_throughput" in res.stdout
    header, _, *lines = variants_table(m, rows).splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    col = columns.index(f"throughput, {CORES} threads (images/s)")
    assert columns[col + 2] == "throughput vs fastest FP32 (`onnx_baseline`)"
    cells = {ln.split("|")[1].strip().strip("`"): [c.strip() for c in ln.strip("|").split("|")] for ln in lines}
    for name, r in rows.items():
        assert cells[name][col] == (f"{r['throughput_fps']:.1f}" if name in measured else DASH), name
        assert cells[name][columns.index("compressed")] == mb(r["zip_bytes"]), name  # the columns after it in line


def test_throughput_counts_every_image_it_times(monkeypatch, layout, tiny_data, tiny_yolo, tmp_path):
    """images/second over the images each runtime really ran, in passes; OpenVINO's THROUGHPUT hint
    choosing its streams within the threads given, its queue fed as many requests as it chose."""
    import openvino as ov

    from posecompress.common.checks import dataset_images, pose_dataset_yaml
    from posecompress.yolo import benchmarking

    ir = tmp_path / "fp32_openvino_model"
    ov.save_model(ov.convert_model(str(layout / "onnx" / "baseline.onnx")), str(ir / "fp32.xml"),
                  compress_to_fp16=False)
    table = [("pytorch_baseline", "pytorch", tiny_yolo, None),
             ("onnx_baseline", "onnx_fp32", layout / "onnx" / "baseline.onnx", None),
             ("openvino_baseline", "openvino_fp32", ir, None)]
    files = dataset_images(pose_dataset_yaml(tiny_data / "pose" / "pose.yaml"), "val")
    real, calls = benchmarking.runner_throughput, {}

    def counted(kind, path, threads, shape):
        run = real(kind, path, threads, shape)
        if run is None:
            return None

        def count(tensors):
            assert all(x.shape == (1, 3, 96, 128) and x.dtype == "float32" for x in tensors)
            calls[kind].append(len(tensors))
            run(tensors)
        count.streams, count.requests = run.streams, run.requests
        return count

    monkeypatch.setattr(benchmarking, "runner_throughput", counted)
    for threads in (1, CORES):
        calls.clear()
        calls.update(onnx_fp32=[], openvino_fp32=[])
        got, seconds = benchmarking.timed_throughput(table, files, (96, 128), 7, threads, warmup=2)
        assert set(got) == set(seconds) == {"onnx_baseline", "openvino_baseline"}  # no PyTorch pass
        onnx, openvino = got["onnx_baseline"], got["openvino_baseline"]
        assert onnx["throughput_streams"] == onnx["throughput_requests"] == 1
        streams, requests = openvino["throughput_streams"], openvino["throughput_requests"]
        assert 1 <= streams <= threads and requests >= streams, threads
        for name, kind in (("onnx_baseline", "onnx_fp32"), ("openvino_baseline", "openvino_fp32")):
            warm, *timed = calls[kind]
            assert warm == 2 * got[name]["throughput_requests"] and timed == [3, 2, 2], (threads, name)
            assert len(seconds[name]) == 3
            assert got[name]["throughput_fps"] == pytest.approx(sum(timed) / sum(seconds[name]))


@pytest.mark.parametrize("params, message", [
    # a recipe with no outputs: its INT8 folder is looked up first (exported_model)
    ({"benchmark": BENCH, "recipes": {"missing": {}}}, "model (int8_missing) "),
    ({"benchmark": {**BENCH, "statistic": "max"}}, "parameter benchmark.statistic: 'max' is not one of"),
    ({"benchmark": {**BENCH, "threads": 0}}, "parameter benchmark.threads: 0 is below 1"),
    ({"benchmark": {**BENCH, "throughput_images": -1}}, "parameter benchmark.throughput_images: -1 is below 0"),
    ({"benchmark": {**BENCH, "throughput_threads": "all"}}, "parameter benchmark.throughput_threads: expected int"),
    ({"benchmark": {k: v for k, v in BENCH.items() if k != "throughput_images"}},
     "parameter benchmark.throughput_images: missing"),
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
    res, metrics, plot = bench(root, tmp_path, data, tiny_yolo,
                               {"benchmark": {**BENCH, "imgsz": [64, 64], "throughput_images": 0}})
    m = json.loads(metrics.read_text())
    assert m["imgsz"] == [64, 64]  # at its own size it runs
    # throughput_images: 0, no throughput pass: the latency keys alone
    assert m["throughput_images"] == 0 and not {"throughput_threads", "best_fp32_throughput"} & set(m)
    assert all(set(r) == KEYS for r in m["variants"].values())
    assert "throughput_fps" not in plot.read_text().splitlines()[0]
