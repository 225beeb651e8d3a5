"""YOLO11 and YOLO26 pose models through the YOLO track: both prune methods -> fine-tune -> ONNX
export (parity checked) -> INT8 (the fast recipe's mode: OpenVINO) -> a timed run -> prediction, as
the YOLOv8 tests do. The models
are built from Ultralytics' own YAMLs and trained one epoch at 64 px on the tiny set (offline, no
weights); YOLO26's head is end-to-end (NMS-free), with (N, 300, 57) outputs."""
import json
import sys

import numpy as np
import onnx
import pytest
import torch
import yaml
from torch import nn

from posecompress.yolo.exported import exported_model, load_exported
from posecompress.yolo.onnx_graph import float_nodes
from posecompress.yolo.prunable import unfollowed_modules
from posecompress.yolo.channel_pruning import prune_channels
from posecompress.yolo.checkpoint import C2fTwoConv
from posecompress.yolo.models import count_params, load_pose_model
from tests.conftest import ACCURACY, ROOT, ROUNDING, run, ultralytics_accuracy

ARCHS = ("yolo11n-pose", "yolo26n-pose")


@pytest.fixture(scope="module", params=ARCHS)
def arch_model(request, tiny_data, tmp_path_factory):
    """(arch, checkpoint): the architecture trained one epoch at 64 px on the tiny set."""
    from demo.train_baselines import train_yolo

    out = tmp_path_factory.mktemp(request.param) / "model.pt"
    return request.param, train_yolo(tiny_data, epochs=1, imgsz=64, batch=4, arch=request.param, out=out)


@pytest.fixture(scope="module")
def dynamic_params_file(params_file, tmp_path_factory):
    """The tiny params with dynamic ONNX exports, so one file is timed at another size."""
    params = yaml.safe_load(params_file.read_text())
    params["export_onnx"]["dynamic"] = True
    # a one-epoch 64 px model, pruned head and all and its SiLUs swapped, puts keypoints 100+ px off
    # the image, where float32 alone moves them by 0.005 (the same model with Conv+BN fused and not);
    # a wrong graph moves them by whole pixels. The demo's models export within 0.0002
    params["export_onnx"]["tolerance"] = 0.05
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def stage(name, *args, check=True):
    return run([sys.executable, "-m", f"stages.{name}", *map(str, args)], ROOT, check=check)


def float_ops(ir_folder, names) -> set:
    """Types of an OpenVINO IR's ops named `names` (ONNX node names survive the conversion as the
    ops' friendly names) that read no FakeQuantize: computed in float."""
    import openvino as ov

    from posecompress.runtime.formats import ir_xml

    names = set(names)
    ops = ov.Core().read_model(str(ir_xml(ir_folder))).get_ordered_ops()
    return {op.get_type_name() for op in ops if op.get_friendly_name() in names and not any(
        i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs())}


def test_c3k2_blocks_lose_channels_and_keep_output_shapes(arch_model):
    arch, path = arch_model
    model = load_pose_model(path).model.eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        before = model(x)[0].shape
    c3k2 = {n: m.cv1.conv.out_channels for n, m in model.named_modules() if type(m).__name__ == "C3k2"}
    assert c3k2, arch
    params = count_params(load_pose_model(path))
    prune_channels(model, torch.rand(4, 3, 64, 64), {"criterion": "l2", "allocation": "uniform", "ratio": 0.3,
                                                     "max_pruning_ratio": 0.6, "round_to": 8, "compensate": True,
                                                     "keep_whole": [], "imgsz": 64, "batch": 4})
    modules = dict(model.named_modules())
    assert all(isinstance(modules[n], C2fTwoConv) for n in c3k2)
    after_halves = {n: modules[n].cv0.conv.out_channels + modules[n].cv1.conv.out_channels for n in c3k2}
    assert any(after_halves[n] < c3k2[n] for n in c3k2)  # C3k2 (and C3k inside) lost channels for real
    assert sum(p.numel() for p in model.parameters()) < params
    with torch.no_grad():
        assert model(x)[0].shape == before


def test_the_head_loses_inner_channels_and_still_trains_and_predicts(arch_model):
    """prune_head on YOLO11's head (depthwise class branch) and YOLO26's (end-to-end branches, and
    the training-only keypoint-sigma convolutions, which the eval-mode trace never runs but whose
    inputs must follow): the inner channels go, the predictions keep their shape in eval and train mode."""
    arch, path = arch_model
    model = load_pose_model(path).model.eval()
    head = model.model[-1]
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        before = model(x)[0].shape
    inner = {n: m.out_channels for n, m in head.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1
             and n.endswith(".conv")}
    prune_channels(model, torch.rand(8, 3, 64, 64), {
        "criterion": "variance", "allocation": "uniform", "ratio": 0.3, "max_pruning_ratio": 0.6,
        "round_to": 4, "compensate": True, "keep_whole": [], "imgsz": 64, "batch": 4, "prune_head": True})
    modules = dict(head.named_modules())
    assert any(modules[n].out_channels < c for n, c in inner.items())
    with torch.no_grad():
        assert model(x)[0].shape == before
        model.train()
        train_out = model(x)
    if arch.startswith("yolo26"):
        assert all(s.in_channels == k.in_channels for s, k in zip(head.cv4_sigma, head.cv4_kpts))
        assert train_out["one2many"]["kpts_sigma"].shape[1] == head.nk_sigma


def test_module_the_pruner_cannot_follow_is_refused(tiny_data, arch_model, tmp_path, params_file):
    """A model holding a block channel pruning does not know (CBAM's channel gate, put after a
    C3k2's output): one line naming its type, exit 2, nothing written."""
    from ultralytics.nn.modules import C2f, ChannelAttention

    _, path = arch_model
    yolo = load_pose_model(path)
    block = next(m for m in yolo.model.modules() if isinstance(m, C2f))
    block.cv2.act = nn.Sequential(block.cv2.act, ChannelAttention(block.cv2.conv.out_channels))
    assert unfollowed_modules(yolo.model)
    bad = tmp_path / "gated.pt"
    yolo.save(bad)
    out = tmp_path / "out" / "model.pt"
    res = stage("prune", "--recipe", "fast", "--model", bad, "--data", tiny_data / "pose" / "pose.yaml",
                "--out", out, "--metrics", tmp_path / "m.json", "--params", params_file, check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().count("\n") == 0
    assert all(s in res.stderr for s in ("cannot follow ChannelAttention", "keep_whole", "l1_unstructured"))
    assert not out.parent.exists() and not (tmp_path / "m.json").exists()


def silu_blocks(model) -> list:
    """Convolution blocks still activated by SiLU (YOLO26's head also holds SiLUs in its training-only
    flow model, which inference never runs)."""
    return [n for n, m in model.named_modules() if isinstance(getattr(m, "act", None), nn.SiLU)]


def test_hardswish_stays_closer_to_the_model_than_relu_and_is_quantized_with_its_conv(arch_model, tiny_data,
                                                                                        tmp_path, params_file):
    """activation: hardswish swaps every SiLU (none left, each one counted); the swapped model's
    outputs stay nearer the SiLU model's than with ReLU (why a pretrained model keeps its accuracy);
    in the exported graph every HardSwish counts as a Conv's activation, quantized with it."""
    from posecompress.yolo.onnx_graph import activation_nodes
    from posecompress.yolo.pruning import swap_activation

    arch, path = arch_model
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        want = load_pose_model(path).model.eval()(x)[0]
        errors = {}
        for act in ("relu", "hardswish"):
            model = load_pose_model(path).model.eval()
            assert swap_activation(model, act) > 0 and not silu_blocks(model)
            errors[act] = float((model(x)[0] - want).abs().median())
    assert errors["hardswish"] < errors["relu"] / 2, errors

    params = yaml.safe_load(params_file.read_text())
    params["recipes"]["fast"]["prune"]["activation"] = "hardswish"
    # BatchNorm statistics of a model trained one epoch are still mostly their initial values; the
    # true ones scale its garbage keypoints to ~1e5 px, where float32 rounding alone passes the
    # export's 0.01 px tolerance (real models: ~1e-3 with the statistics re-estimated)
    params["recipes"]["fast"]["prune"]["adapt_bn"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    data, pruned, onnx_out = tiny_data / "pose" / "pose.yaml", tmp_path / "prune" / "model.pt", tmp_path / "m.onnx"
    stage("prune", "--recipe", "fast", "--model", path, "--data", data, "--out", pruned,
          "--metrics", tmp_path / "prune.json", "--params", tmp_path / "params.yaml")
    swapped = json.loads((tmp_path / "prune.json").read_text())["hardswish_swapped"]
    model = load_pose_model(pruned).model
    assert swapped == sum(isinstance(m, nn.Hardswish) for m in model.modules()) > 0
    assert not silu_blocks(model)
    stage("export_onnx", "--model", pruned, "--data", data, "--out", onnx_out, "--metrics", tmp_path / "export.json",
          "--params", tmp_path / "params.yaml")
    graph = onnx.load(str(onnx_out)).graph
    hardswish = {n.name for n in graph.node if n.op_type == "HardSwish"}
    # at most the swapped count: YOLO26's export keeps only the end-to-end (one-to-one) head branches
    assert 0 < len(hardswish) <= swapped and hardswish <= activation_nodes(graph)
    assert not hardswish & set(float_nodes(graph, "head_decoding")) and hardswish & set(float_nodes(graph, "head"))


@pytest.mark.parametrize("recipe", ["reference", "fast"])
def test_prune_finetune_export_quantize_time_predict(arch_model, recipe, tiny_data, tmp_path, dynamic_params_file):
    arch, path = arch_model
    data = tiny_data / "pose" / "pose.yaml"
    pruned, tuned = tmp_path / "prune" / "model.pt", tmp_path / "finetune" / "model.pt"
    onnx_out, int8 = tmp_path / "onnx" / "m.onnx", tmp_path / "int8" / "m"  # quantize writes a folder
    m = tmp_path / "metrics"
    stage("prune", "--recipe", recipe, "--model", path, "--data", data, "--out", pruned,
          "--metrics", m / "prune.json", "--params", dynamic_params_file)
    pm = json.loads((m / "prune.json").read_text())
    assert 0 < pm["peak_rss_mb"] < 4096
    assert pm["params"] < pm["params_before"] if recipe == "fast" else pm["prune_ratio"] > 0.2
    stage("finetune", "--recipe", recipe, "--model", pruned, "--data", data, "--out", tuned,
          "--metrics", m / "finetune.json", "--plots", tmp_path / "curves.csv", "--params", dynamic_params_file,
          "--teacher", path)
    stage("export_onnx", "--model", tuned, "--data", data, "--out", onnx_out,
          "--metrics", m / "export.json", "--params", dynamic_params_file)
    e = json.loads((m / "export.json").read_text())
    assert e["max_abs_diff"] <= e["tolerance"]
    # every value of 2 images' outputs, or for YOLO26's end-to-end rows (this 1-epoch model scores
    # nothing above 0.05) at least the 10 best rows of 57 values, both ways
    assert e["values_compared"] >= (2 * 2 * 10 * 57 if arch.startswith("yolo26") else 2 * 56 * 84)
    stage("quantize", "--recipe", "fast", "--model", onnx_out, "--data", data, "--out", int8,
          "--metrics", m / "int8.json", "--params", dynamic_params_file)
    q = json.loads((m / "int8.json").read_text())
    assert 0 < q["conv_quantized"] <= q["conv_total"] and q["nodes_kept_float"] > 0
    model = exported_model(int8)
    assert (q["runtime"], model.name) == ("openvino", "int8_openvino_model"), q
    if arch.startswith("yolo26"):  # the end-to-end head's top-k selection and gathers stay float
        kept = float_ops(model, float_nodes(onnx.load(str(onnx_out)).graph, "head_decoding"))
        assert {"TopK", "GatherElements"} <= kept, kept
    # the IR's own accuracy, at the size its dynamic ONNX source was exported at
    want = ultralytics_accuracy(model, data, [64, 64], 1, tmp_path / "val")
    assert {k: q[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)

    from posecompress.common.checks import dataset_images
    from posecompress.yolo.benchmarking import kind_of, runner, timed_images
    files = dataset_images(data, "val")
    kind = kind_of(model, "int8")
    times = timed_images({"fp32": runner("onnx_fp32", onnx_out, 1, (96, 128)), "int8": runner(kind, model, 1, (96, 128))},
                         files, (96, 128), 2, 1)
    assert all(len(t) == 2 and min(t) > 0 for t in times.values())

    # prediction reads the model's own output layout: YOLO26's end-to-end (N, max_det, 57) rows of box,
    # score, class and 17 keypoints (max_det 300, or every anchor when fewer: 84 at 64x64), others'
    # (N, 56, anchors) columns of box, score and keypoints
    out = runner(kind, model, 1, (64, 64))(np.zeros((1, 3, 64, 64), np.float32))[0]
    assert out.shape == ((1, 84, 57) if arch.startswith("yolo26") else (1, 56, 84))
    result = load_exported(int8).predict(str(files[0]), imgsz=64, conf=0.0, device="cpu", verbose=False)[0]
    assert result.keypoints.data.shape[1:] == (17, 3)


def test_whole_pipeline_on_yolo26_by_one_parameter(tmp_path, tiny_inputs):
    """`dvc exp run -S baseline.model=...` takes every stage, the report and predict to a YOLO26 baseline."""
    import shutil

    from demo.train_baselines import train_yolo
    from tests.conftest import make_project

    inputs = tmp_path / "inputs" / "data"
    shutil.copytree(tiny_inputs, inputs, ignore=shutil.ignore_patterns("*.cache"))
    train_yolo(inputs, epochs=1, imgsz=64, batch=4, arch="yolo26n-pose", out=inputs / "models" / "yolo26n_pose.pt")
    repo = make_project(tmp_path / "project", inputs)
    # the classifier track does not read the YOLO baseline: zero classifier recipes keep it short
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(classifier_recipes={})
    params["system_eval"]["classifier_of"] = {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "no classifier recipes"], repo)
    run(["dvc", "exp", "run", "-S", "baseline.model=data/models/yolo26n_pose.pt"], repo)
    metrics = lambda name: json.loads((repo / "metrics" / f"{name}.json").read_text())  # noqa: E731
    assert metrics("eval_baseline")["architecture"] == "yolo26n-pose"
    for name in ("baseline", "reference", "fast"):
        e = metrics(f"export_onnx/{name}")
        assert e["max_abs_diff"] <= e["tolerance"] and e["values_compared"] > 0
    assert metrics("prune/fast")["params"] < metrics("prune/fast")["params_before"]
    variants = metrics("benchmark")["variants"]
    assert {"int8_baseline", "int8_reference", "int8_fast"} <= set(variants)
    assert {"ultralytics_onnx_int8", "ultralytics_openvino_fp32", "ultralytics_openvino_int8"} <= set(variants)
    # the benchmark shows each peer's accuracy as its own stage measured it
    assert all(variants[f"ultralytics_{f}"][k] == metrics(f"peer/{f}")[k] for k in ("pose_map50", "pose_map50_95")
               for f in ("onnx_int8", "openvino_fp32", "openvino_int8"))
    assert {"baseline", "reference", "fast"} <= set(metrics("system_eval"))
    assert "yolo26n-pose" in (repo / "report" / "report.md").read_text()
    image = next((repo / "data" / "pose" / "images" / "val").iterdir())
    res = run([sys.executable, "-m", "tools.predict", str(image), "--recipe", "fast", "--out", str(tmp_path / "p")],
              repo)
    assert str(image) in res.stdout and (tmp_path / "p" / f"{image.stem}.jpg").exists()
