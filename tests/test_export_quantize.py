"""export_onnx and quantize on a tiny model at 64 px: export -> check -> quantize (onnxruntime's
modes, dynamic and static; OpenVINO's in test_openvino.py) -> validate the INT8 file; Conv counts
against the graph; the head found from the graph; bad input."""
import json
import re
import shutil
import sys

import numpy as np
import onnx
import pytest
import torch

from tests.conftest import (ACCURACY, DYNAMIC, EXPORT, OPENVINO, QUANTIZE_KEYS, ROOT, ROUNDING, STATIC,
                            export_stage, quantize_stage, run, stage_main, ultralytics_accuracy, write_params)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_data, tiny_yolo):
    """The tiny model exported by the stage: (onnx path, metrics)."""
    folder = tmp_path_factory.mktemp("export")
    _, out, metrics = export_stage(folder, tiny_yolo, tiny_data / "pose" / "pose.yaml")
    return out, json.loads(metrics.read_text())


def test_export_passes_checker_and_matches_pytorch(exported, tiny_data, tiny_yolo, tmp_path):
    """The parity figures are the largest |PyTorch - onnxruntime| and the count of values compared
    over the check images, recomputed here from the checkpoint and the file; the accuracy is
    Ultralytics' validator's on the written file at the export size."""
    import onnxruntime as ort
    from ultralytics import YOLO

    from posecompress.common.checks import dataset_images
    from posecompress.common.images import spread, validator_tensor

    path, m = exported
    onnx.checker.check_model(str(path), full_check=True)
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]
    assert m["imgsz"] == [64, 64] and m["check_images"] == 2 and m["dynamic"] is False
    assert m["tolerance"] == EXPORT["tolerance"] and m["size_bytes"] == path.stat().st_size
    data = tiny_data / "pose" / "pose.yaml"
    net = YOLO(str(tiny_yolo)).model.float().eval().fuse()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, compared = 0.0, 0
    for f in spread(dataset_images(data, "val"), m["check_images"]):
        x = validator_tensor(f, (64, 64))
        with torch.inference_mode():
            ref = net(torch.from_numpy(x))[0].numpy()
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        worst, compared = max(worst, float(np.abs(got - ref).max())), compared + ref.size
    assert m["values_compared"] == compared and m["max_abs_diff"] == pytest.approx(worst, abs=ROUNDING)
    want = ultralytics_accuracy(path, data, [64, 64], 1, tmp_path)
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)


def test_end_to_end_rows_are_compared_whatever_their_score():
    """An end-to-end head's rows of a weak model all score under the 0.05 floor: the top rows are
    compared anyway, in either order, and a difference in them is found."""
    from posecompress.yolo.onnx_export import END2END_TOP_ROWS, output_diff

    rng = np.random.default_rng(0)
    ref = rng.random((1, 300, 57)).astype(np.float32)
    ref[0, :, 4] = np.sort(rng.random(300) * 0.04)[::-1]  # every score under the floor, best first
    swapped = ref.copy()
    swapped[0, [0, 1]] = ref[0, [1, 0]]  # TopK may order near-equal scores either way
    diff, compared = output_diff(ref, swapped, end2end=True)
    assert diff == 0.0 and compared == 2 * END2END_TOP_ROWS * 57
    moved = ref.copy()
    moved[0, 3, 10] += 0.5  # one keypoint of the fourth-best row
    assert output_diff(ref, moved, end2end=True)[0] >= 0.5 - 1e-6
    assert output_diff(ref, moved, end2end=False) == (pytest.approx(0.5, abs=1e-6), ref.size)


def test_export_beyond_tolerance_writes_nothing(tmp_path, tiny_data, tiny_yolo):
    """The parity check runs before the file is moved into place: a rejected export never appears."""
    res, out, metrics = export_stage(tmp_path, tiny_yolo, tiny_data / "pose" / "pose.yaml",
                                     {**EXPORT, "tolerance": 0.0}, check=False)
    assert res.returncode != 0 and "ONNX output differs from PyTorch's by" in res.stderr.strip().splitlines()[-1]
    assert not out.parent.exists() and not metrics.exists()


@pytest.mark.parametrize("shape", [(64, 64), (64, 96)])
def test_tensors_are_the_validators(tiny_data, shape):
    """The calibration / check / benchmark input equals what Ultralytics' val dataset yields."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    from posecompress.common.images import validator_tensor

    data = check_det_dataset(str(tiny_data / "pose" / "pose.yaml"))
    ds = build_yolo_dataset(get_cfg(overrides={"imgsz": list(shape), "task": "pose"}), data["val"], 1, data,
                            mode="val", stride=32)
    for i in (0, len(ds) - 1):
        ours = validator_tensor(ds.im_files[i], shape)
        theirs = ds[i]["img"].numpy()[None].astype(np.float32) / 255
        assert ours.shape == theirs.shape == (1, 3, *shape)
        np.testing.assert_array_equal(ours, theirs)


def test_head_nodes_found_from_graph(exported):
    from posecompress.yolo.onnx_graph import float_nodes, last_module

    graph = onnx.load(str(exported[0])).graph
    prefix = last_module(graph)
    ops = {n.name: n.op_type for n in graph.node}
    head = float_nodes(graph, "head")
    decoding = float_nodes(graph, "head_decoding")
    assert float_nodes(graph, "none") == []
    assert set(decoding) < set(head)
    assert all(n.startswith(prefix) and ops[n] != "Conv" for n in head)
    producer = next(n.name for n in graph.node if graph.output[0].name in n.output)
    assert producer in decoding
    assert any(ops[n] == "Softmax" for n in decoding)  # the DFL's
    assert not any(ops[n] in ("Sigmoid", "Mul") and ops[n.rsplit("/", 2)[0] + "/conv/Conv"] == "Conv"
                   for n in decoding if n.rsplit("/", 2)[0] + "/conv/Conv" in ops)  # no SiLU after a Conv


def convs_on_dequantized(graph):
    dq = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return [n for n in graph.node if n.op_type == "Conv" and n.input[1] in dq]


def quantized_tensors(graph):
    return [n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"]


def qdq_readers(graph, tensor):
    """Nodes reading `tensor` through a QuantizeLinear -> DequantizeLinear pair."""
    q_out = {n.output[0] for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor}
    dq_out = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in q_out}
    return [n for n in graph.node if set(n.input) & dq_out]


def test_static_quantization_counts_and_validates(tmp_path, tiny_data, exported):
    from posecompress.yolo.onnx_graph import float_nodes

    src, _ = exported
    _, folder, metrics = quantize_stage(tmp_path, src, tiny_data / "pose" / "pose.yaml", STATIC)
    m = json.loads(metrics.read_text())
    out = folder / "int8.onnx"  # the stage's folder holds the one INT8 file
    assert [p.name for p in folder.iterdir()] == ["int8.onnx"]
    onnx.checker.check_model(str(out), full_check=True)
    fp32, q = onnx.load(str(src)).graph, onnx.load(str(out)).graph
    assert set(m) == QUANTIZE_KEYS and m["size_bytes"] == out.stat().st_size
    assert m["mode"] == "static" and m["runtime"] == "onnxruntime" and m["calibration_images"] == 4
    assert m["conv_total"] == sum(n.op_type == "Conv" for n in fp32.node)
    assert m["conv_quantized"] == len(convs_on_dequantized(q)) > 0
    # QDQ keeps node names. A node kept in float has its output quantized only where a quantized
    # Conv reads it; the graph output stays float, straight from the head's own node.
    head = float_nodes(fp32, "head")
    assert m["nodes_kept_float"] == len(head) > 0
    for name in head:
        for o in next(n.output for n in q.node if n.name == name):
            assert {n.op_type for n in qdq_readers(q, o)} <= {"Conv"}, (name, o)
    producer = next(n for n in q.node if q.output[0].name in n.output)
    assert producer.name in head and producer.op_type != "DequantizeLinear"
    assert any(n.op_type != "Conv" for o in quantized_tensors(q) for n in qdq_readers(q, o))  # SiLUs etc.
    # the INT8 file's own accuracy, at the size of the ONNX file it came from
    want = ultralytics_accuracy(out, tiny_data / "pose" / "pose.yaml", [64, 64], 1, tmp_path / "val")
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props}["task"] == "pose"


def test_float_stem_keeps_the_image_conv_and_its_activation_in_float(tmp_path, tiny_data, exported):
    import onnxruntime as ort

    from posecompress.common.images import validator_tensor
    from posecompress.yolo.onnx_graph import activation_nodes, float_nodes, stem_nodes

    src, _ = exported
    fp32 = onnx.load(str(src)).graph
    stem = stem_nodes(fp32)
    ops = {n.name: n for n in fp32.node}
    convs = [n for n in stem if ops[n].op_type == "Conv"]
    assert len(convs) == 1 and ops[convs[0]].input[0] == fp32.input[0].name
    assert set(stem) - set(convs) and set(stem) - set(convs) <= activation_nodes(fp32)  # its SiLU
    _, folder, metrics = quantize_stage(tmp_path, src, tiny_data / "pose" / "pose.yaml",
                                        {**STATIC, "keep_float": "head_decoding", "float_stem": True})
    m = json.loads(metrics.read_text())
    out = folder / "int8.onnx"
    q = onnx.load(str(out)).graph
    assert m["nodes_kept_float"] == len(float_nodes(fp32, "head_decoding")) + len(stem)
    assert m["conv_quantized"] == m["conv_total"] - 1 == len(convs_on_dequantized(q))
    stem_conv = next(n for n in q.node if n.name == convs[0])
    assert stem_conv.input[0] == q.input[0].name  # reads the float image, no QuantizeLinear before it
    assert not [n for n in q.node if n.op_type == "QuantizeLinear" and n.input[0] == q.input[0].name]
    image = sorted((tiny_data / "pose" / "images" / "val").iterdir())[0]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert np.isfinite(session.run(None, {session.get_inputs()[0].name: validator_tensor(image, (64, 64))})[0]).all()


def test_dynamic_quantization_counts_and_validates(tmp_path, tiny_data, exported):
    src, _ = exported
    _, folder, metrics = quantize_stage(tmp_path, src, tiny_data / "pose" / "pose.yaml", DYNAMIC, recipe="study")
    m = json.loads(metrics.read_text())
    q = onnx.load(str(folder / "int8.onnx")).graph
    assert set(m) == QUANTIZE_KEYS and m["runtime"] == "onnxruntime"
    assert m["mode"] == "dynamic" and m["nodes_kept_float"] == 0 and m["calibration_images"] == 0
    assert m["conv_quantized"] == sum(n.op_type == "ConvInteger" for n in q.node) > 0
    assert m["conv_quantized"] <= m["conv_total"]
    want = ultralytics_accuracy(folder / "int8.onnx", tiny_data / "pose" / "pose.yaml", [64, 64], 1, tmp_path / "val")
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)


def test_dynamic_export_runs_at_other_sizes_and_quantizes(tmp_path, tiny_data, tiny_yolo):
    """export_onnx.dynamic: one file, checked and validated at imgsz, that runs at any H x W (the
    benchmark's size), also after static INT8 quantization calibrated at imgsz."""
    import onnxruntime as ort

    from posecompress.common.images import validator_tensor
    from posecompress.yolo.exported import image_input

    data = tiny_data / "pose" / "pose.yaml"
    _, src, export_metrics = export_stage(tmp_path / "export", tiny_yolo, data, {**EXPORT, "dynamic": True})
    e = json.loads(export_metrics.read_text())
    assert e["dynamic"] is True and e["max_abs_diff"] <= e["tolerance"]
    _, folder, metrics = quantize_stage(tmp_path, src, data, STATIC)
    out = folder / "int8.onnx"
    m = json.loads(metrics.read_text())
    assert m["conv_quantized"] == len(convs_on_dequantized(onnx.load(str(out)).graph)) > 0
    # validated at the size the export's metadata names, its input having none
    want = ultralytics_accuracy(out, data, [64, 64], 1, tmp_path / "val")
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)
    image = sorted((tiny_data / "pose" / "images" / "val").iterdir())[0]
    for path in (src, out):
        _, shape, dynamic = image_input(path)
        assert dynamic and shape == (64, 64)  # from the metadata
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for shape in ((64, 64), (96, 128)):
            y = session.run(None, {session.get_inputs()[0].name: validator_tensor(image, shape)})[0]
            assert y.shape[-1] == sum((shape[0] // s) * (shape[1] // s) for s in (8, 16, 32))  # anchors


def broken_onnx(tmp_path, src, data):
    model = onnx.load(str(src))
    model.graph.node[0].input[0] = "no_such_tensor"
    onnx.save(model, str(tmp_path / "broken.onnx"))
    return tmp_path / "broken.onnx", data


def junk_onnx(tmp_path, src, data):
    (tmp_path / "junk.onnx").write_bytes(b"not an onnx model")
    return tmp_path / "junk.onnx", data


def dataset_with_train(tmp_path, src, data, images):
    root = tmp_path / "pose"
    shutil.copytree(data.parent, root, ignore=shutil.ignore_patterns("train*", "*.cache"))
    (root / "images" / "train").mkdir(exist_ok=True)
    for name, content in images.items():
        (root / "images" / "train" / name).write_bytes(content)
    return src, root / "pose.yaml"


@pytest.mark.parametrize("make, message", [
    (broken_onnx, "fails the ONNX checker"),
    (junk_onnx, "fails the ONNX checker"),
    (lambda t, s, d: dataset_with_train(t, s, d, {}), "no train images"),
    (lambda t, s, d: dataset_with_train(t, s, d, {"a.jpg": b"not a jpeg"}), "a.jpg: unreadable"),
])
def test_quantize_bad_input_stops_before_work(tmp_path, tiny_data, exported, make, message):
    model, data = make(tmp_path, exported[0], tiny_data / "pose" / "pose.yaml")
    res, out, metrics = quantize_stage(tmp_path, model, data, STATIC, check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0]
    assert not out.parent.exists() and not metrics.exists()


def refused_parameter(monkeypatch, tmp_path, stage: str, message: str, **sections) -> None:
    """The stage's main(), in this process, stops on a parameter with `message` before it writes
    anything. The model and dataset it is given do not exist: reading either before the parameters
    would stop it with another message. (The InputError as one `error:` line and exit status 2 is
    run_stage's, which the subprocess tests above see.)"""
    from posecompress.common.checks import InputError

    out, metrics = tmp_path / "out" / "model", tmp_path / "metrics" / "m.json"
    with pytest.raises(InputError, match=re.escape(message)):
        stage_main(monkeypatch, stage, "--model", tmp_path / "absent.onnx", "--data", tmp_path / "absent.yaml",
                   "--out", out, "--metrics", metrics, "--params", write_params(tmp_path, **sections))
    assert not out.parent.exists() and not metrics.parent.exists()


@pytest.mark.parametrize("settings, message", [
    ({**STATIC, "mode": "float16"}, "parameter quantize_baseline.mode: 'float16' is not one of"),
    ({**STATIC, "activation_type": "QInt4"}, "parameter quantize_baseline.activation_type: 'QInt4'"),
    ({**STATIC, "calibrate_method": "Guess"}, "parameter quantize_baseline.calibrate_method"),
    ({**STATIC, "calibration_images": 0}, "parameter quantize_baseline.calibration_images: 0 is below 1"),
    ({**DYNAMIC, "keep_float": "tail"}, "parameter quantize_baseline.keep_float: 'tail'"),
    ({**STATIC, "float_stem": "yes"}, "parameter quantize_baseline.float_stem: expected bool"),
    # weight_type belongs to the onnxruntime modes, preset to openvino's
    ({k: v for k, v in STATIC.items() if k != "weight_type"}, "parameter quantize_baseline.weight_type: missing"),
    ({**OPENVINO, "preset": "fast"}, "parameter quantize_baseline.preset: 'fast' is not one of mixed"),
    ({**OPENVINO, "calibration_images": 0}, "parameter quantize_baseline.calibration_images: 0 is below 1"),
])
def test_quantize_bad_parameter_stops_before_work(monkeypatch, tmp_path, settings, message):
    refused_parameter(monkeypatch, tmp_path, "quantize", message, quantize_baseline=settings)


@pytest.mark.parametrize("export, message", [
    ({**EXPORT, "imgsz": [64, 50]}, "parameter export_onnx.imgsz"),
    ({**EXPORT, "opset": 3}, "parameter export_onnx.opset: 3 is below 11"),
    ({**EXPORT, "simplify": "yes"}, "parameter export_onnx.simplify: expected bool"),
    ({**EXPORT, "dynamic": "no"}, "parameter export_onnx.dynamic: expected bool"),
])
def test_export_bad_parameter_stops_before_work(monkeypatch, tmp_path, export, message):
    refused_parameter(monkeypatch, tmp_path, "export_onnx", message, export_onnx=export)


def test_two_exports_of_one_checkpoint_are_the_same_bytes(tmp_path, tiny_data, tiny_yolo):
    """Each export runs in its own process, where onnxslim's shape annotations differ: a changed
    ONNX file, and so a changed size metric, always means a changed model."""
    files = []
    for i in range(2):
        _, out, metrics = export_stage(tmp_path / str(i), tiny_yolo, tiny_data / "pose" / "pose.yaml",
                                       {**EXPORT, "dynamic": True})
        files.append(out.read_bytes())
        assert json.loads(metrics.read_text())["size_bytes"] == len(files[-1])
    assert files[0] == files[1]
    meta = {m.key: m.value for m in onnx.load_from_string(files[0]).metadata_props}
    assert meta["task"] == "pose" and "imgsz" in meta  # what Ultralytics' AutoBackend reads stays


def test_the_export_does_not_hold_where_the_project_lies(tmp_path, tiny_data, tiny_yolo):
    """A checkpoint names its dataset by the absolute path it was trained at; the ONNX file's
    description keeps only the file's name, so clones at different paths write the same bytes."""
    from posecompress.yolo.checkpoint import read_checkpoint

    ckpt = read_checkpoint(tiny_yolo)
    ckpt["train_args"] = {**(ckpt.get("train_args") or {}), "data": str(ROOT / "data" / "pose" / "pose.yaml")}
    tuned = tmp_path / "tuned.pt"
    torch.save(ckpt, tuned)
    _, out, _ = export_stage(tmp_path, tuned, tiny_data / "pose" / "pose.yaml")
    description = {m.key: m.value for m in onnx.load(str(out)).metadata_props}["description"]
    assert description.endswith("trained on pose.yaml") and str(ROOT) not in description


def test_int8_outputs_stay_close_to_fp32_on_val_images(tmp_path, tiny_data, exported):
    """The INT8 file computes what its FP32 source does: on every val image the decoded outputs agree
    closely, where a mAP between 0 and 1 says nothing (measured with keep_float none, the scores and
    visibilities fail this)."""
    import onnxruntime as ort

    from posecompress.common.checks import dataset_images
    from posecompress.common.images import validator_tensor

    src, _ = exported
    _, folder, _ = quantize_stage(tmp_path, src, tiny_data / "pose" / "pose.yaml",
                                  {**STATIC, "keep_float": "head_decoding"})
    int8 = folder / "int8.onnx"
    fp32_sess, int8_sess = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (src, int8))
    name = fp32_sess.get_inputs()[0].name
    for f in dataset_images(tiny_data / "pose" / "pose.yaml", "val"):
        x = validator_tensor(f, (64, 64))
        ref, got = fp32_sess.run(None, {name: x})[0][0], int8_sess.run(None, {name: x})[0][0]
        # rows: box (pixels of the 64 x 64 input), score, 17 x (x, y, visibility). Decoding in float
        # keeps scores and visibilities to ~1e-4 (quantized with the pixel rows they are
        # concatenated to: ~0.01 and ~0.5); the boxes carry the quantized backbone's error
        boxes, score, visibility = np.abs(ref[:4] - got[:4]), np.abs(ref[4] - got[4]), np.abs(ref[7::3] - got[7::3])
        assert score.max() < 0.005 and visibility.max() < 0.05, (f.name, score.max(), visibility.max())
        assert np.median(boxes) < 1.0 and boxes.max() < 4.0, (f.name, boxes.max())


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs, too small for any model file (a real full file system: mounting needs root)."""
    import subprocess

    mnt = tmp_path / "full"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path, full_disk, tiny_data, tiny_yolo, exported):
    """export_onnx writing an ONNX file, quantize an INT8 folder, each onto a full file system: one line
    naming the path, the space needed and the space free; nothing half-written left there."""
    data = tiny_data / "pose" / "pose.yaml"
    onnx_out = full_disk / "onnx" / "baseline.onnx"
    res = run([sys.executable, "-m", "stages.export_onnx", "--model", str(tiny_yolo), "--data", str(data),
               "--out", str(onnx_out), "--metrics", str(tmp_path / "export.json"),
               "--params", str(write_params(tmp_path / "e", export_onnx=EXPORT))], ROOT, check=False)
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {onnx_out}: no space left on the device (") and "MB needed" in last, res.stderr
    assert "Traceback" not in res.stderr
    int8_out = full_disk / "int8" / "baseline"
    res = run([sys.executable, "-m", "stages.quantize", "--model", str(exported[0]), "--data", str(data),
               "--out", str(int8_out), "--metrics", str(tmp_path / "quantize.json"),
               "--params", str(write_params(tmp_path / "q", quantize_baseline=DYNAMIC))], ROOT, check=False)
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {int8_out}: no space left on the device (") and "Traceback" not in res.stderr
    assert list(full_disk.iterdir()) == [] and not (tmp_path / "export.json").exists()
