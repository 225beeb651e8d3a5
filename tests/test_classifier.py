"""The classifier track's stages on the tiny Keras classifier: convert_tf -> classifier_prune ->
classifier_finetune -> classifier_benchmark, for an unstructured and a structured recipe."""
import json
import sys

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml

import posecompress.classifier.tf_conversion  # noqa: F401  (onnx2torch before TensorFlow, see there)
from posecompress.classifier.models import (accuracy, load_model, outputs_are_probabilities, predict,
                                      prunable)
from posecompress.common.checks import InputError
from stages.classifier_prune import read_params
from posecompress.classifier.pruning import prune_neurons, prune_unstructured
from tests.conftest import ROOT, run

RECIPES = {"reference": {"prune": {"method": "l1_unstructured", "amount": 0.6, "scope": "global"},
                         "finetune": {"lr": 1e-3, "epochs": 1, "batch": 32, "seed": 0}},
           "fast": {"prune": {"method": "structured", "amount": 0.5},
                    "finetune": {"lr": 1e-3, "epochs": 1, "batch": 32, "seed": 0}}}
PARAMS = {"convert_tf": {"opset": 17, "tolerance": 1e-4}, "classifier_recipes": RECIPES,
          "classifier_benchmark": {"rounds": 5, "warmup": 1, "threads": 1}, "training": {"device": "auto"}}


def stage(name, *args, params, check=True):
    return run([sys.executable, "-m", f"stages.{name}", *map(str, args), "--params", str(params)], ROOT, check=check)


@pytest.fixture(scope="session")
def track(tmp_path_factory, tiny_data, tiny_classifier):
    """Every stage of the track run once per recipe on the tiny classifier; the folder of outputs."""
    out = tmp_path_factory.mktemp("classifier_track")
    params = out / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    data = tiny_data / "activity"
    stage("convert_tf", "--model", tiny_classifier, "--data", data,
          "--onnx", out / "classifier.onnx", "--torch", out / "classifier.pt", "--metrics", out / "convert_tf.json",
          "--confusion", out / "original.csv", params=params)
    for r in RECIPES:
        stage("classifier_prune", "--recipe", r, "--model", out / "classifier.pt", "--data", data,
              "--out", out / r / "pruned.pt", "--metrics", out / r / "prune.json", params=params)
        stage("classifier_finetune", "--recipe", r, "--original", out / "classifier.pt",
              "--model", out / r / "pruned.pt", "--data", data, "--out", out / r / "final.pt",
              "--onnx", out / r / "final.onnx", "--metrics", out / r / "finetune.json",
              "--confusion", out / r / "final.csv", "--figure", out / r / "confusion.png", params=params)
        stage("classifier_benchmark", "--recipe", r, "--original", out / "classifier.onnx",
              "--model", out / r / "final.onnx", "--data", data, "--metrics", out / r / "benchmark.json",
              params=params)
    return out


def metrics(path):
    return json.loads(path.read_text())


def test_conversion_metrics_and_confusion_data(track, activity):
    m = metrics(track / "convert_tf.json")
    assert all(p["same_class_percent"] == 100 for p in m["parity"].values())
    assert m["params"] == m["trainable_params"] > 0
    assert list(m["per_class"]) == activity["classes"]
    table = pd.read_csv(track / "original.csv")
    assert list(table.columns) == ["actual", "predicted"] and len(table) == len(activity["y_val"])
    assert set(table["actual"]) <= set(activity["classes"]) and set(table["predicted"]) <= set(activity["classes"])
    assert m["accuracy"] == pytest.approx(100 * (table["actual"] == table["predicted"]).mean(), abs=1e-3)


def test_unstructured_prune_save_load_evaluate(track, activity):
    m = metrics(track / "reference" / "prune.json")
    model = load_model(track / "reference" / "pruned.pt")
    zeros = sum(int((l.weight == 0).sum()) for l in prunable(model))
    weights = sum(l.weight.numel() for l in prunable(model))
    assert m["pruned_params"] == zeros == round(0.6 * weights)
    assert m["total_params"] == sum(p.numel() for p in model.parameters())
    assert m["prune_ratio"] == pytest.approx(zeros / m["total_params"], abs=1e-5)
    assert m["accuracy"] == pytest.approx(accuracy(activity["y_val"], predict(model, activity["x_val"]).argmax(1)),
                                          abs=1e-3)
    assert m["baseline_accuracy"] == pytest.approx(metrics(track / "convert_tf.json")["accuracy"], abs=1e-3)


def test_finetune_keeps_the_pruned_weights_at_zero(track):
    pruned, final = load_model(track / "reference" / "pruned.pt"), load_model(track / "reference" / "final.pt")
    m = metrics(track / "reference" / "finetune.json")
    assert m["prune_ratio"] == m["prune_ratio_before"] == metrics(track / "reference" / "prune.json")["prune_ratio"]
    changed = False
    for a, b in zip(prunable(pruned), prunable(final)):
        assert torch.equal(a.weight == 0, b.weight == 0)  # the same positions, not only the same count
        changed |= not torch.equal(a.weight, b.weight)
    assert changed, "fine-tuning did not change any weight"
    assert m["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")  # training.device: auto


def test_structured_pruning_shrinks_the_matrices(track, activity):
    original, final = load_model(track / "classifier.pt"), load_model(track / "fast" / "final.pt")
    before = [(l.in_features, l.out_features) for l in prunable(original)]
    after = [(l.in_features, l.out_features) for l in prunable(final)]
    assert after[0] == (before[0][0], before[0][1] // 2) and after[-1] == (before[-1][0] // 2, before[-1][1])
    m = metrics(track / "fast" / "prune.json")
    assert m["params_after"] == sum(p.numel() for p in final.parameters()) < m["total_params"]
    assert m["pruned_params"] == m["total_params"] - m["params_after"]
    assert outputs_are_probabilities(predict(final, activity["x_val"]))
    sizes = [int(np.prod(t.dims)) for t in onnx.load(track / "fast" / "final.onnx").graph.initializer]
    assert sum(sizes) == m["params_after"]


def test_structured_pruning_follows_elementwise_steps(tmp_path, track, activity):
    """Removing neurons keeps the outputs of the kept ones: with amount 0 nothing changes."""
    model = load_model(track / "classifier.pt")
    reference = predict(model, activity["x_val"])
    changes = prune_neurons(model, 0.0)
    assert changes and all(w0 == w1 for _, w0, w1 in changes)
    assert np.abs(predict(model, activity["x_val"]) - reference).max() < 1e-6


def test_layer_scope_prunes_each_layer_by_the_amount(track):
    model = prune_unstructured(load_model(track / "classifier.pt"), 0.3, "layer")
    for layer in prunable(model):
        assert int((layer.weight == 0).sum()) == round(0.3 * layer.weight.numel())


def test_benchmark_and_figures(track):
    for r in RECIPES:
        m = metrics(track / r / "benchmark.json")
        assert m["speedup"] == pytest.approx(m["original"]["latency_ms_min"] / m["compressed"]["latency_ms_min"], rel=1e-3)
        c = m["compressed"]
        assert 0 < c["latency_ms_min"] <= c["latency_ms_p50"] <= c["latency_ms_p90"]
        assert m["compressed"]["accuracy"] == pytest.approx(metrics(track / r / "finetune.json")["accuracy"], abs=0.5)
        assert (track / r / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(pd.read_csv(track / r / "final.csv")) > 0


@pytest.mark.parametrize("change, message", [
    ({"method": "magnitude"}, "classifier_recipes.reference.prune.method: 'magnitude' is not one of"),
    ({"amount": 1.0}, "classifier_recipes.reference.prune.amount: 1.0 is outside [0.0, 1.0)"),
    ({"scope": None}, "classifier_recipes.reference.prune.scope: expected str"),
])
def test_bad_prune_params_are_named(change, message, tmp_path):
    """(The one-line, exit-2 contract of the command line is checked in test_convert_tf.)"""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"classifier_recipes": {"reference": {"prune": {
        **RECIPES["reference"]["prune"], **change}}}}))
    with pytest.raises(InputError) as e:
        read_params(params, "reference")
    assert message in str(e.value)
    with pytest.raises(InputError, match="no 'classifier_recipes.other.prune' section"):
        read_params(params, "other")
