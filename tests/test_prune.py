"""prune and finetune stages on the tiny YOLO pose model: round trips through the saved files,
sparsity kept exactly through fine-tuning, the pruned model through Ultralytics' ONNX exporter."""
import json
import sys

import numpy as np
import onnx
import pytest
import torch
import yaml

from posecompress.common.checks import InputError
from posecompress.yolo.onnx_graph import activation_nodes, float_nodes
from posecompress.yolo.checkpoint import C2fTwoConv, read_checkpoint, save_checkpoint
from posecompress.yolo.pruning import rewrite_c2f, sparsity
from posecompress.yolo.models import count_params, gflops, load_pose_model
from tests.conftest import ACCURACY, ROOT, ROUNDING, run, ultralytics_accuracy


@pytest.fixture(scope="module")
def pruned(tiny_data, tiny_yolo, params_file, tmp_path_factory):
    """{recipe: (checkpoint, metrics)} for the shipped recipes, pruned by the stage's functions."""
    from posecompress.yolo.prune_checkpoint import prune_and_measure
    from stages import prune

    out = tmp_path_factory.mktemp("pruned")
    result = {}
    for recipe in ("reference", "fast"):
        p = prune.read_params(params_file, recipe)
        path = out / recipe / "model.pt"
        result[recipe] = path, prune_and_measure(load_pose_model(tiny_yolo), tiny_yolo,
                                                 tiny_data / "pose" / "pose.yaml", path, p)
    return result


def test_unstructured_round_trip(pruned, tiny_yolo, tiny_data, tmp_path):
    path, metrics = pruned["reference"]
    model = load_pose_model(path)
    layers = read_checkpoint(path)["pruning"]["layers"]
    state = model.model.state_dict()
    assert not any(k.endswith(("_orig", "_mask")) for k in state)  # zeros made permanent, no prune hooks
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    counts = sparsity(model.model, layers)
    assert counts["pruned_params"] == metrics["pruned_params"]
    assert counts["prune_ratio"] == pytest.approx(0.223, abs=0.005)  # the shipped amount, per layer
    assert 0 < counts["model_prune_ratio"] < counts["prune_ratio"]
    assert count_params(model) == count_params(load_pose_model(tiny_yolo))  # same shape, only zeros
    # the accuracy recorded is the saved file's, at the recipe's imgsz and batch (the tiny params')
    want = ultralytics_accuracy(path, tiny_data / "pose" / "pose.yaml", 64, 4, tmp_path)
    assert {k: metrics[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)


def test_c2f_rewrite_keeps_outputs(tiny_yolo):
    model = load_pose_model(tiny_yolo).model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
        assert rewrite_c2f(model) > 0
        after = model(x)[0]
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_checkpoint_written_before_c2f_two_conv_moved_still_loads_and_runs():
    """A pruned checkpoint pickles C2fTwoConv by its module path; tests/fixtures holds a tiny pruned
    model saved when that path was posecompress.yolo.pruning, with the output it gave then."""
    fixtures = ROOT / "tests" / "fixtures"
    with open(fixtures / "c2f_two_conv_checkpoint.pt", "rb") as f:
        assert b"posecompress.yolo.pruning" in f.read() and C2fTwoConv.__module__ == "posecompress.yolo.checkpoint"
    model = load_pose_model(fixtures / "c2f_two_conv_checkpoint.pt").model.float().eval()
    assert sum(isinstance(m, C2fTwoConv) for m in model.modules()) == 8
    then = np.load(fixtures / "c2f_two_conv_checkpoint_output.npz")
    with torch.inference_mode():
        now = model(torch.from_numpy(then["x"]))[0].numpy()
    np.testing.assert_array_equal(now, then["y"])


def test_structured_round_trip(pruned, tiny_yolo, tiny_data, tmp_path):
    path, metrics = pruned["fast"]
    model = load_pose_model(path)
    base = load_pose_model(tiny_yolo)
    assert any(isinstance(m, C2fTwoConv) for m in model.model.modules())
    assert metrics["params"] == count_params(model) < count_params(base)
    assert gflops(model, 64) < gflops(base, 64)
    assert metrics["gflops_reduction"] > 0
    head, base_head = model.model.model[-1], base.model.model[-1]  # the Pose head keeps its outputs
    assert [c[-1].out_channels for c in head.cv4] == [c[-1].out_channels for c in base_head.cv4]
    # the shipped fast recipe swaps every SiLU for ReLU (activation: relu)
    assert metrics["relu_swapped"] == sum(isinstance(m, torch.nn.ReLU) for m in model.model.modules()) > 0
    assert not any(isinstance(m, torch.nn.SiLU) for m in model.model.modules())
    # the accuracy recorded is the saved file's, at the recipe's imgsz and batch (the tiny params')
    want = ultralytics_accuracy(path, tiny_data / "pose" / "pose.yaml", 64, 4, tmp_path)
    assert {k: metrics[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)


def count_params_of(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _finetune_params(params_file, recipe, **overrides):
    from stages import finetune

    return {**finetune.read_params(params_file, recipe), **overrides}


def test_finetune_keeps_unstructured_sparsity_exactly(pruned, tiny_data, tmp_path, params_file):
    from posecompress.yolo.training import finetune_and_measure

    path, before = pruned["reference"]
    # a learning rate that moves the weights, and no frozen layers, so zeros would not survive by accident
    p = _finetune_params(params_file, "reference", lr0=0.05, momentum=0.9, freeze=None)
    out = tmp_path / "tuned.pt"
    metrics = finetune_and_measure(path, tiny_data / "pose" / "pose.yaml", out, tmp_path / "curves.csv", p)
    assert metrics["pruned_params"] == before["pruned_params"]
    assert metrics["prune_ratio"] == metrics["prune_ratio_before"] == before["prune_ratio"]
    layers = read_checkpoint(path)["pruning"]["layers"]
    old = dict(load_pose_model(path).model.named_modules())
    new = dict(load_pose_model(out).model.named_modules())
    moved = 0
    for n in layers:
        assert torch.equal(new[n].weight == 0, old[n].weight == 0), n  # the same weights are zero
        moved += int((new[n].weight != old[n].weight).sum())
    assert moved > 0  # fine-tuning did change the remaining weights
    curves = (tmp_path / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("epoch,") and len(curves) == 1 + p["epochs"]


@pytest.mark.parametrize("frozen_bn", ["keep", "update"])
def test_frozen_bn_decides_whether_frozen_layers_reestimate_statistics(pruned, tiny_data, tmp_path,
                                                                       params_file, frozen_bn):
    from posecompress.yolo.training import finetune

    path, _ = pruned["reference"]
    p = _finetune_params(params_file, "reference", frozen_bn=frozen_bn)  # the study's recipe: freeze 21
    module, _, _ = finetune(path, tiny_data / "pose" / "pose.yaml", p, [], tmp_path / "runs")
    before = load_pose_model(path).model.state_dict()
    after = module.state_dict()
    frozen = [k for k in before if k.startswith("model.0.") and k.endswith(("running_mean", "running_var"))]
    assert frozen
    drift = max(float((after[k] - before[k]).abs().max()) for k in frozen)
    if frozen_bn == "keep":  # the EMA's blend of equal values may round in the last bit
        assert drift < 1e-6
    else:
        assert drift > 1e-4
    weights = [k for k in before if k.startswith("model.0.") and k.endswith("weight")]
    assert all(torch.equal(after[k], before[k]) for k in weights)  # frozen either way: no gradient steps


def test_finetuned_structured_model_is_saved_as_trained_and_exports_to_onnx(pruned, tiny_data, tmp_path,
                                                                             params_file):
    import onnxruntime as ort
    from posecompress.yolo.training import finetune

    path, before = pruned["fast"]
    p = _finetune_params(params_file, "fast", distill=False)
    module, _, args = finetune(path, tiny_data / "pose" / "pose.yaml", p, [], tmp_path / "runs")
    assert count_params_of(module) == before["params"]  # the pruned module itself, not one rebuilt from YAML
    out = tmp_path / "tuned.pt"
    save_checkpoint(module, out, {"train_args": args}, {"method": "channel"})
    loaded = load_pose_model(out)
    for k, v in module.state_dict().items():  # float32 as trained, not Ultralytics' half precision
        assert torch.equal(loaded.model.state_dict()[k], v), k
    onnx_path = loaded.export(format="onnx", imgsz=64, device="cpu", simplify=False)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = load_pose_model(out).model.eval()(torch.from_numpy(x))[0].numpy()
    # export_onnx's tolerance: the export fuses Conv+BN, which alone moves this one-epoch model's
    # values (pruned head and all) by up to 0.005; a wrong graph moves them by whole units
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
    graph = onnx.load(onnx_path).graph  # ReLUs on Conv outputs: quantized with their Convs, never kept float
    relus = {n.name for n in graph.node if n.op_type == "Relu"}
    assert relus and relus == activation_nodes(graph)
    assert not relus & set(float_nodes(graph, "head_decoding")) and relus & set(float_nodes(graph, "head"))


def test_distillation_trains_the_pruned_student_alone(pruned, tiny_data, tiny_yolo, tmp_path, params_file):
    """distill: true adds Ultralytics' distillation loss from the unpruned teacher, distill_keypoints
    the teacher's keypoints; what is saved is the pruned student, as pruned, with no teacher or
    projector in it."""
    from posecompress.yolo.training import finetune_and_measure

    path, before = pruned["fast"]
    p = _finetune_params(params_file, "fast", distill=True, dis=6.0, distill_keypoints=5.0, epochs=1)
    out, curves = tmp_path / "tuned.pt", tmp_path / "curves.csv"
    metrics = finetune_and_measure(path, tiny_data / "pose" / "pose.yaml", out, curves, p, teacher=tiny_yolo)
    assert metrics["params"] == before["params"]
    module = load_pose_model(out).model
    assert not any(n.startswith(("teacher_model", "projector", "student_model")) for n, _ in module.named_modules())
    header, row = curves.read_text().splitlines()[:2]
    losses = dict(zip(header.split(","), row.split(",")))
    assert float(losses["train/dis_loss"]) > 0 and float(losses["train/kpt_dis_loss"]) > 0
    # and it exports as any pruned checkpoint does, its ONNX outputs compared with PyTorch's
    params = yaml.safe_load(params_file.read_text())
    params["export_onnx"]["tolerance"] = 0.05  # float32 noise on a one-epoch model's off-image keypoints
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run([sys.executable, "-m", "stages.export_onnx", "--model", str(out), "--data", str(tiny_data / "pose" / "pose.yaml"),
         "--out", str(tmp_path / "tuned.onnx"), "--metrics", str(tmp_path / "export.json"),
         "--params", str(tmp_path / "params.yaml")], ROOT)
    assert json.loads((tmp_path / "export.json").read_text())["values_compared"] > 0


@pytest.mark.parametrize("changes, teacher, message", [
    ({"distill": True}, None, "distill: true needs the unpruned model to learn from: --teacher"),
    ({"distill_model": "x.pt"}, None, "recipes.fast.finetune.distill_model: set by the pipeline"),
    ({"distill": False, "dis": 3.0}, None, "recipes.fast.finetune.dis: a distillation weight, read only"),
    ({"distill": False, "distill_keypoints": 5.0}, None,
     "recipes.fast.finetune.distill_keypoints: a distillation weight, read only"),
    ({"distill": True, "distill_keypoints": -1.0}, "t.pt", "recipes.fast.finetune.distill_keypoints: "),
    ({"distill": "yes"}, None, "recipes.fast.finetune.distill: expected bool"),
])
def test_distillation_settings_are_checked_before_training(pruned, tiny_data, tmp_path, params_file,
                                                           changes, teacher, message):
    from posecompress.yolo.training import finetune_and_measure
    from stages.finetune import read_params

    path, _ = pruned["fast"]
    out = tmp_path / "tuned.pt"
    with pytest.raises(InputError) as e:
        p = read_params(_bad_params(params_file, tmp_path, "fast", "finetune", **changes), "fast")
        finetune_and_measure(path, tiny_data / "pose" / "pose.yaml", out, None, p, teacher=teacher)
    assert message in str(e.value), str(e.value)
    assert not out.exists()


def _bad_params(params_file, tmp_path, recipe, stage, **changes):
    params = yaml.safe_load(params_file.read_text())
    params["recipes"][recipe][stage].update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("recipe, changes, named", [
    ("reference", {"amount": 1.0}, "recipes.reference.prune.amount"),
    ("fast", {"ratio": -0.1}, "recipes.fast.prune.ratio"),
    ("fast", {"criterion": "entropy"}, "recipes.fast.prune.criterion"),
    ("reference", {"method": "magic"}, "recipes.reference.prune.method"),
])
def test_prune_rejects_bad_params(params_file, tmp_path, tiny_yolo, tiny_data, recipe, changes, named):
    bad = _bad_params(params_file, tmp_path, recipe, "prune", **changes)
    out = tmp_path / "out" / "model.pt"
    res = run([sys.executable, "-m", "stages.prune", "--recipe", recipe, "--model", str(tiny_yolo),
               "--data", str(tiny_data / "pose" / "pose.yaml"), "--out", str(out),
               "--metrics", str(tmp_path / "m.json"), "--params", str(bad)], ROOT, check=False)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and named in res.stderr
    assert not out.exists() and not (tmp_path / "m.json").exists()


def test_stages_reject_a_model_that_is_not_pose(params_file, tmp_path, tiny_data):
    from ultralytics import YOLO

    detect = tmp_path / "detect.pt"
    YOLO("yolov8n.yaml").save(str(detect))
    for stage in ("prune", "finetune"):
        res = run([sys.executable, "-m", f"stages.{stage}", "--recipe", "fast", "--model", str(detect),
                   "--data", str(tiny_data / "pose" / "pose.yaml"), "--out", str(tmp_path / "o.pt"),
                   "--metrics", str(tmp_path / "m.json"), "--params", str(params_file)], ROOT, check=False)
        assert res.returncode == 2 and "not a pose model" in res.stderr, res.stderr
        assert res.stderr.strip().count("\n") == 0


def test_finetune_rejects_unknown_train_argument(params_file, tmp_path):
    from stages.finetune import read_params

    with pytest.raises(InputError, match="recipes.fast.finetune"):
        read_params(_bad_params(params_file, tmp_path, "fast", "finetune", learning_rate=0.1), "fast")
    with pytest.raises(InputError, match="recipes.fast.finetune.data"):
        read_params(_bad_params(params_file, tmp_path, "fast", "finetune", data="x.yaml"), "fast")
    with pytest.raises(InputError, match="recipes.fast.finetune.frozen_bn: 'sometimes' is not one of keep"):
        read_params(_bad_params(params_file, tmp_path, "fast", "finetune", frozen_bn="sometimes"), "fast")


def test_finetune_trains_where_training_device_says_and_shows_each_epoch(pruned, tiny_data, tmp_path, params_file):
    """training.device reaches Ultralytics' trainer (auto is the CPU on a machine without a CUDA GPU,
    recorded in the metrics and the checkpoint's train arguments); the stage prints one line an epoch."""
    path, _ = pruned["reference"]
    params = yaml.safe_load(params_file.read_text())
    params["recipes"]["reference"]["finetune"]["epochs"] = 2
    auto = tmp_path / "auto.yaml"
    auto.write_text(yaml.safe_dump({**params, "training": {"device": "auto"}}))
    out, metrics = tmp_path / "tuned" / "model.pt", tmp_path / "m.json"
    cmd = [sys.executable, "-m", "stages.finetune", "--recipe", "reference", "--model", str(path),
           "--data", str(tiny_data / "pose" / "pose.yaml"), "--out", str(out), "--metrics", str(metrics)]
    res = run(cmd + ["--params", str(auto)], ROOT)
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert json.loads(metrics.read_text())["device"] == expected
    assert read_checkpoint(out)["train_args"]["device"] == expected
    epochs = [line for line in res.stdout.splitlines() if line.strip().startswith("epoch ")]
    assert [e.split(":")[0].strip() for e in epochs] == ["epoch 1/2", "epoch 2/2"], res.stdout
    assert "min left" in epochs[-1]

    missing = tmp_path / "missing.yaml"  # a GPU that is not there: refused before any work
    missing.write_text(yaml.safe_dump({**params, "training": {"device": f"cuda:{torch.cuda.device_count()}"}}))
    res = run(cmd[:-4] + ["--out", str(tmp_path / "no" / "model.pt"), "--metrics", str(tmp_path / "no.json"),
                          "--params", str(missing)], ROOT, check=False)
    assert res.returncode == 2 and res.stderr.strip().startswith("error: parameter training.device")
    assert not (tmp_path / "no").exists() and not (tmp_path / "no.json").exists()


@pytest.mark.parametrize("recipe", ["reference", "fast"])
def test_the_same_pruning_writes_the_same_bytes(pruned, tiny_yolo, tiny_data, params_file, tmp_path, recipe):
    """So `dvc repro -f prune@<recipe>` leaves the stages after it as they are."""
    from posecompress.yolo.prune_checkpoint import prune_and_measure
    from stages import prune

    first, _ = pruned[recipe]
    again = tmp_path / "model.pt"
    prune_and_measure(load_pose_model(tiny_yolo), tiny_yolo, tiny_data / "pose" / "pose.yaml", again,
                      prune.read_params(params_file, recipe))
    assert again.read_bytes() == first.read_bytes()
