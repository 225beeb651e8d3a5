"""The OpenVINO path on a tiny model at 64 px: quantize mode openvino -> the IR against
its FP32 source on val images -> the benchmark, beside Ultralytics' own exports (the peer stage) ->
prediction; the IgnoredScope found from the ONNX graph; nothing sent out or written under ~.

Every stage runs as dvc.yaml runs it, in its own process, with the real Ultralytics, NNCF and
OpenVINO; the stages run with HOME in a temporary folder and CI / NNCF_CI taken out of their
environment, so only the project itself keeps them quiet."""
import json
import os
import shutil
import sys

import numpy as np
import onnx
import pytest

from tests.conftest import (ACCURACY, BENCH, EXPORT, KEYS, LAYOUT, OPENVINO, QUANTIZE_KEYS, ROOT, ROUNDING,
                            THROUGHPUT_KEYS, bench, export_stage, quantize_stage, run, ultralytics_accuracy)

PEERS = ("onnx_int8", "openvino_fp32", "openvino_int8")
SIZE = (64, 64)

# How close the OpenVINO INT8 IR stays to onnxruntime running its FP32 ONNX, on the val images
# (rows of the 64 x 64 model's output: box x y w h and 17 keypoints' x y in pixels, the person
# score, 17 keypoint visibilities):
# - INT8_SIGNAL_FRACTION: over all val images and anchors, the median |INT8 - FP32| of each kind of
#   value is under this fraction of the median |FP32 - FP32's mean over the val images|, i.e. of how
#   much the outputs follow the image. A model that ignores its image scores about 1 (the val mean is
#   the best such model), random outputs far more; measured here: 0.18-0.21 (coordinates 0.23 px
#   against 1.1 px), with OpenVINO running the float parts in bf16 where the CPU has AVX512-BF16.
# - INT8_MEDIAN_PX: on every val image, the median coordinate error in pixels. Measured 0.1-0.3 px,
#   2.1 px on the one image this untrained model is least stable on (its FP32 output moves by 1.3 px
#   there between onnxruntime and OpenVINO's bf16 alone); outputs of another image, or random values
#   with the outputs' own distribution, are 23 px off.
INT8_SIGNAL_FRACTION = 0.5
INT8_MEDIAN_PX = 6.0
VALUES = {"coordinates": np.r_[0:4, 5:56:3, 6:56:3], "scores": np.r_[4:5], "visibilities": np.r_[7:56:3]}


@pytest.fixture(scope="module")
def live_yolo(tmp_path_factory, tiny_data, tiny_yolo):
    """The tiny model with its BatchNorm statistics re-estimated on every tiny image at 64 px.

    One epoch leaves them at their initial values (momentum 0.03, three steps), where each layer
    shrinks what it passes on: the outputs are the head's biases, the same for every image to 1e-5,
    and any INT8 model, broken or not, would match them. Re-estimated, every layer's output is
    normalised and the outputs follow the image. (Val images are included so that none sends the
    2 x 2 deepest maps outside what the layers were normalised for; on train images alone two did,
    and even FP32 on OpenVINO moved by 10 px there.)"""
    import torch

    from posecompress.common.checks import dataset_images
    from posecompress.common.images import validator_tensor
    from posecompress.yolo.models import load_pose_model

    data = tiny_data / "pose" / "pose.yaml"
    images = [f for split in ("train", "val") for f in dataset_images(data, split)]
    x = torch.from_numpy(np.concatenate([validator_tensor(f, SIZE) for f in images]))
    yolo = load_pose_model(tiny_yolo)
    net = yolo.model.float()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: these images' statistics exactly
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    out = tmp_path_factory.mktemp("live") / "model.pt"
    yolo.save(str(out))
    return out


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """(home, environment) for the stages: HOME an empty folder, CI and NNCF_CI unset (the test
    process has them from its own import of posecompress)."""
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NNCF_CI")}
    return home, {**env, "HOME": str(home)}


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, tiny_data, live_yolo):
    """export_onnx of the live tiny model, H and W free as shipped: (onnx file, its metrics file)."""
    folder = tmp_path_factory.mktemp("export")
    _, out, metrics = export_stage(folder, live_yolo, tiny_data / "pose" / "pose.yaml", {**EXPORT, "dynamic": True})
    return out, metrics


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, tiny_data, fp32, quiet):
    """quantize in mode openvino (4 calibration images, the head's decoding kept float): (the
    stage's folder, its metrics)."""
    folder = tmp_path_factory.mktemp("quantize")
    _, out, metrics = quantize_stage(folder, fp32[0], tiny_data / "pose" / "pose.yaml", OPENVINO, env=quiet[1])
    return out, json.loads(metrics.read_text())


@pytest.fixture(scope="module")
def peers(tmp_path_factory, tiny_data, live_yolo, params_file, quiet):
    """The peer stage for every format on the live tiny model, with the tiny params (4 calibration
    images, export_onnx.imgsz 64 x 64): the folder holding peer/<format> and peer_metrics/<format>.json."""
    root = tmp_path_factory.mktemp("peers")
    for f in PEERS:
        run([sys.executable, "-m", "stages.peer", "--format", f, "--model", str(live_yolo),
             "--data", str(tiny_data / "pose" / "pose.yaml"), "--out", str(root / "peer" / f),
             "--metrics", str(root / "peer_metrics" / f"{f}.json"), "--params", str(params_file)], ROOT, env=quiet[1])
    return root


@pytest.fixture(scope="module")
def layout(tmp_path_factory, fp32, quantized, peers):
    """The benchmark's inputs (conftest.LAYOUT): the baseline's FP32 ONNX, its OpenVINO INT8
    and the peers, as the stages wrote them."""
    root = tmp_path_factory.mktemp("layout")
    for d in LAYOUT:
        (root / d).mkdir(parents=True)
    shutil.copy(fp32[0], root / "onnx" / "baseline.onnx")
    shutil.copy(fp32[1], root / "export_metrics" / "baseline.json")
    shutil.copytree(quantized[0], root / "int8" / "baseline")
    (root / "quantize_metrics" / "baseline.json").write_text(json.dumps(quantized[1]))
    for d in ("peer", "peer_metrics"):
        shutil.rmtree(root / d)
        shutil.copytree(peers / d, root / d)
    return root


def ov_model_of(onnx_path):
    """The OpenVINO model of an ONNX file as quantize mode openvino converts it: convert_model, then
    the input fixed at the export size."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    model.reshape([1, 3, *SIZE])
    return model


def fake_quantized_readers(ir_xml, names) -> tuple:
    """(how many of `names` the IR has, {friendly name: op type} of those that read a FakeQuantize output)."""
    import openvino as ov

    ops = [op for op in ov.Core().read_model(str(ir_xml)).get_ordered_ops() if op.get_friendly_name() in names]
    return len(ops), {op.get_friendly_name(): op.get_type_name() for op in ops if any(
        i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs())}


def test_importing_posecompress_turns_off_nncf_and_openvino_telemetry():
    code = "import os, posecompress; print(os.environ['NNCF_CI'], os.environ['CI'])"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NNCF_CI")}
    res = run([sys.executable, "-c", code], ROOT, env=env)
    nncf_ci, ci = res.stdout.split()
    assert nncf_ci and ci.lower() in ("1", "true")


def test_openvino_ignored_covers_every_kept_node_it_can_find(fp32):
    """Each kept ONNX node's output tensor, where it is still there in the OpenVINO graph, comes out
    of an op of the returned scope; the graph's output (the head's last node) is one of them."""
    from posecompress.yolo.onnx_graph import float_nodes
    from posecompress.yolo.quantize_modes import openvino_ignored

    graph = onnx.load(str(fp32[0])).graph
    model = ov_model_of(fp32[0])
    producers, ops = {}, {op.get_friendly_name() for op in model.get_ordered_ops()}
    for op in model.get_ordered_ops():
        for o in op.outputs():
            for t in o.get_names():
                producers.setdefault(t, set()).add(op.get_friendly_name())
    nodes = {n.name: n for n in graph.node}
    for keep_float, stem in (("head_decoding", False), ("head", False), ("none", True)):
        keep = float_nodes(graph, keep_float, stem)
        scope = set(openvino_ignored(model, graph, keep))
        assert keep and scope <= ops
        found = [(name, t) for name in keep for t in nodes[name].output if t in producers]
        assert found, keep_float
        for name, t in found:
            assert producers[t] & scope, (keep_float, name, t)
        if keep_float != "none":
            assert graph.output[0].name in {t for _, t in found}
    assert openvino_ignored(model, graph, []) == []


def test_openvino_quantize_writes_an_ir_that_keeps_its_scope_float(quantized, fp32, tiny_data, tmp_path):
    """The IR folder, the static mode's metric keys, INT8 convolutions, and no value the scope keeps
    float passing a FakeQuantize; without the scope NNCF does quantize some of them."""
    from posecompress.common.checks import dataset_images
    from posecompress.runtime.formats import ir_xml, model_bytes
    from posecompress.runtime import runtimes
    from posecompress.yolo.exported import load_exported
    from posecompress.yolo.onnx_graph import float_nodes
    from posecompress.yolo.quantize_modes import QUANTIZE_MODES, openvino_ignored

    folder, m = quantized
    assert [p.name for p in folder.iterdir()] == ["int8_openvino_model"]
    ir = folder / "int8_openvino_model"
    assert {p.name for p in ir.iterdir()} == {"int8.xml", "int8.bin", "metadata.yaml"}
    assert set(m) == QUANTIZE_KEYS  # the static and dynamic modes' keys (test_export_quantize)
    src = onnx.load(str(fp32[0]))
    keep = float_nodes(src.graph, "head_decoding")
    assert (m["mode"], m["runtime"], m["calibration_images"], m["float_stem"]) == ("openvino", "openvino", 4, False)
    assert m["nodes_kept_float"] == len(keep) > 0 and m["size_bytes"] == model_bytes(ir)
    assert 0 < m["conv_quantized"] <= m["conv_total"] == sum(n.op_type == "Conv" for n in src.graph.node)
    # the IR's own accuracy, at the size the FP32 file was exported at
    want = ultralytics_accuracy(ir, tiny_data / "pose" / "pose.yaml", list(SIZE), 1, tmp_path / "val")
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)
    assert runtimes.runtime_of(ir) is runtimes.OPENVINO
    meta = runtimes.OPENVINO.metadata(ir)
    assert meta["task"] == "pose" and list(meta["imgsz"]) == list(SIZE)
    assert runtimes.OPENVINO.io_dims(ir)[1] == [1, 3, *SIZE]  # a static input: the export size

    scope = set(openvino_ignored(ov_model_of(fp32[0]), src.graph, keep))
    present, readers = fake_quantized_readers(ir_xml(ir), scope)
    assert present > len(scope) // 2  # the names survive NNCF and the IR
    # ShapeOf reads only its input's shape: it shares the quantized feature map with the Convs
    assert set(readers.values()) <= {"ShapeOf"}, readers

    # the same quantization with nothing kept float: some of those ops then read quantized values
    calibration = dataset_images(tiny_data / "pose" / "pose.yaml", "train")[:2]
    QUANTIZE_MODES["openvino"].write(src, fp32[0], tmp_path / "all_openvino_model", OPENVINO, calibration, [])
    _, unscoped = fake_quantized_readers(ir_xml(tmp_path / "all_openvino_model"), scope)
    assert set(unscoped.values()) - {"ShapeOf"}, unscoped

    yolo = load_exported(folder)  # the stage's folder stands for the IR inside it
    assert yolo.task == "pose"


def test_openvino_int8_matches_its_fp32_source_on_val_images(quantized, fp32, tiny_data):
    from posecompress.common.checks import dataset_images
    from posecompress.common.images import validator_tensor
    from posecompress.runtime.sessions import onnx_runner, openvino_runner
    from posecompress.yolo.exported import exported_model

    int8 = openvino_runner(exported_model(quantized[0]), 1, (1, 3, *SIZE))
    reference = onnx_runner(fp32[0], 1)
    images = [validator_tensor(f, SIZE) for f in dataset_images(tiny_data / "pose" / "pose.yaml", "val")]
    want = np.stack([reference(x)[0][0] for x in images])
    got = np.stack([int8(x)[0][0] for x in images])
    assert got.shape == want.shape == (len(images), 56, 84) and np.isfinite(got).all()
    for kind, rows in VALUES.items():
        error = np.median(np.abs(got[:, rows] - want[:, rows]))
        spread = np.median(np.abs(want[:, rows] - want[:, rows].mean(0)))
        assert spread > 0 and error < INT8_SIGNAL_FRACTION * spread, (kind, error, spread)
    px = np.abs(got[:, VALUES["coordinates"]] - want[:, VALUES["coordinates"]])
    per_image = np.median(px.reshape(len(images), -1), axis=1)
    assert (per_image < INT8_MEDIAN_PX).all(), per_image


def test_pipeline_predicts_with_the_quantize_folder(quantized, tiny_onnx_classifier, tiny_data):
    """The detector + classifier pair takes the stage's folder, at the size the IR was exported at;
    each person's activity is what the classifier file, run here, makes of its keypoints."""
    import onnxruntime as ort

    from posecompress.common.checks import dataset_images
    from posecompress.system.pipeline import PosePipeline, keypoint_features, read_image

    pipeline = PosePipeline(quantized[0], tiny_onnx_classifier, conf=0.0, threads=1)
    assert pipeline.size == {"imgsz": list(SIZE)}
    people = [p for f in dataset_images(tiny_data / "pose" / "pose.yaml", "val") for p in pipeline(read_image(f))]
    assert people
    classifier = ort.InferenceSession(str(tiny_onnx_classifier), providers=["CPUExecutionProvider"])
    for p in people:
        assert p.keypoints.shape == (17, 3) and np.isfinite(p.box).all()
        features = keypoint_features(p.keypoints, pipeline.kpt_seen, pipeline.kpt_occluded)[None]
        probabilities = classifier.run(None, {classifier.get_inputs()[0].name: features.astype(np.float32)})[0][0]
        assert p.activity == probabilities.argmax() and p.probability == pytest.approx(probabilities.max())


def test_peers_export_validate_and_share_our_metric_keys(peers, quantized, tiny_data, tmp_path):
    import openvino as ov
    import ultralytics

    from posecompress.runtime.formats import ir_xml, model_bytes
    from posecompress.yolo.exported import exported_model
    from posecompress.yolo.exported import check_pose_export

    shared = {"runtime", "calibration_images", "size_bytes", *ACCURACY}
    assert shared <= set(quantized[1])
    for f in PEERS:
        m = json.loads((peers / "peer_metrics" / f"{f}.json").read_text())
        assert set(m) == {"format", "ultralytics_version", "calibration_split", *shared}, f
        model = exported_model(peers / "peer" / f)
        check_pose_export(model)
        int8 = f.endswith("int8")
        assert (m["format"], m["ultralytics_version"], m["size_bytes"]) == (f, ultralytics.__version__, model_bytes(model))
        assert (m["calibration_images"], m["calibration_split"]) == ((4, "train") if int8 else (0, None))
        if f == "onnx_int8":
            assert m["runtime"] == "onnxruntime" and model.suffix == ".onnx"
            # the written file's own accuracy at the export size (the OpenVINO peers are validated
            # reshaped to it, in a copy the stage does not keep)
            want = ultralytics_accuracy(model, tiny_data / "pose" / "pose.yaml", list(SIZE), 1, tmp_path)
            assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)
            ops = {n.op_type for n in onnx.load(str(model)).graph.node}
            assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
        else:
            assert m["runtime"] == "openvino" and model.is_dir()
            ops = {op.get_type_name() for op in ov.Core().read_model(str(ir_xml(model))).get_ordered_ops()}
            assert ("FakeQuantize" in ops) == int8, f


def test_benchmark_times_the_peers_beside_our_variants(layout, live_yolo, tiny_data, tmp_path):
    """Every variant, ours in either runtime and Ultralytics', one set of keys; speed-ups against the
    fastest FP32 form of the baseline. The IR exported at 64 x 64 is compiled for 96 x 128."""
    _, metrics, plot = bench(layout, tmp_path, tiny_data / "pose" / "pose.yaml", live_yolo,
                             {"benchmark": BENCH, "peers": {"formats": list(PEERS)}})
    m = json.loads(metrics.read_text())
    rows = m["variants"]
    assert m["imgsz"] == [96, 128] and m["accuracy_imgsz"] == list(SIZE)
    assert set(rows) == {"pytorch_baseline", "onnx_baseline", "int8_baseline", *(f"ultralytics_{f}" for f in PEERS)}
    assert set(rows["int8_baseline"]) == KEYS | THROUGHPUT_KEYS
    for f in PEERS:
        assert set(rows[f"ultralytics_{f}"]) == set(rows["int8_baseline"]), f
    kinds = {n: (r["kind"], r["runtime"]) for n, r in rows.items()}
    assert kinds == {"pytorch_baseline": ("pytorch", "pytorch"), "onnx_baseline": ("onnx_fp32", "onnxruntime"),
                     "int8_baseline": ("openvino_int8", "openvino"),
                     "ultralytics_onnx_int8": ("onnx_int8", "onnxruntime"),
                     "ultralytics_openvino_fp32": ("openvino_fp32", "openvino"),
                     "ultralytics_openvino_int8": ("openvino_int8", "openvino")}
    assert m["best_fp32"] in ("pytorch_baseline", "onnx_baseline", "ultralytics_openvino_fp32")
    best = rows[m["best_fp32"]]
    assert best["speedup_vs_best_fp32"] == 1
    for name, r in rows.items():
        assert r["speedup_vs_best_fp32"] == pytest.approx(best["latency_ms_min"] / r["latency_ms_min"], rel=1e-3)
        # OpenVINO runs float parts in what the CPU plugin picks (bf16 with AVX512-BF16); the others in f32
        assert r["float_precision"] in (("f32", "bf16", "f16") if r["runtime"] == "openvino" else ("f32",)), name
        if r["kind"] in ("pytorch", "onnx_fp32", "openvino_fp32"):
            assert best["latency_ms_min"] <= r["latency_ms_min"], name
        # the THROUGHPUT hint's streams share the threads; onnxruntime runs one image at a time
        streams, requests = r.get("throughput_streams"), r.get("throughput_requests")
        if r["runtime"] == "openvino":
            assert 1 <= streams <= m["throughput_threads"] and requests >= streams, name
        elif r["runtime"] == "onnxruntime":
            assert (streams, requests) == (1, 1), name
    # by throughput, the fastest FP32 form of the baseline is one that has a throughput: not PyTorch's
    fastest = rows[m["best_fp32_throughput"]]
    assert m["best_fp32_throughput"] in ("onnx_baseline", "ultralytics_openvino_fp32")
    assert all(fastest["throughput_fps"] >= rows[n]["throughput_fps"]
               for n in ("onnx_baseline", "ultralytics_openvino_fp32"))
    for f in PEERS:  # accuracy: the peer stage's own, at the export size
        peer = json.loads((layout / "peer_metrics" / f"{f}.json").read_text())
        assert rows[f"ultralytics_{f}"]["pose_map50_95"] == peer["pose_map50_95"]
    assert rows["int8_baseline"]["size_bytes"] < rows["onnx_baseline"]["size_bytes"]
    assert {line.split(",")[0] for line in plot.read_text().splitlines()[1:]} == set(rows)


def test_stages_leave_nothing_under_home(quiet, quantized, peers):
    """NNCF's telemetry and OpenVINO's model converter (ours and Ultralytics' OpenVINO exports) would
    write ~/intel/ (consent and client id files) and report usage; importing posecompress stops both."""
    home, _ = quiet
    assert not (home / "intel").exists(), sorted(p.name for p in (home / "intel").rglob("*"))
