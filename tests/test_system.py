"""Detector + classifier as one system: matching, system_eval's metrics, the predict command."""
import json
import sys

import numpy as np
import pytest
import yaml

from posecompress.runtime.pipeline import Person
from stages.system_eval import box_iou, match
from tests.conftest import ROOT, run

PARAMS = {"conf": 0.001, "iou_match": 0.5, "kpt_seen": 0.5, "kpt_occluded": 0.2,
          "threads": 1, "max_images": 3, "sheet_images": 2}


def person(box, conf):
    return Person(np.array(box, float), conf, np.zeros((17, 3)), 0, 1.0)


def test_match_takes_the_most_confident_detection_above_the_iou_threshold():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    weak, strong, stray = person([0, 0, 10, 9], 0.4), person([1, 0, 10, 10], 0.9), person([50, 50, 60, 60], 0.99)
    assert box_iou(gt, gt).round(6).tolist() == [[1, 0], [0, 1]]
    found = match([weak, strong, stray], gt, 0.5)
    assert list(found) == [0] and found[0] is strong
    assert match([person([0, 0, 10, 4], 0.9)], gt, 0.5) == {}  # IoU 0.4


@pytest.fixture(scope="module")
def tiny_onnx_classifier(tmp_path_factory):
    """A real ONNX classifier: 51 keypoint values -> 20 softmax probabilities."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(51, 20), torch.nn.Softmax(dim=1)).eval()
    path = tmp_path_factory.mktemp("cls") / "classifier.onnx"
    torch.onnx.export(model, (torch.zeros(1, 51),), str(path), input_names=["keypoints"],
                      dynamic_axes={"keypoints": {0: "n"}}, dynamo=False)
    return path


def system_eval(out, tiny_inputs, classifier, converted, system_params, recipes, classifier_recipes, check=True):
    """system_eval on the tiny model with these params; `classifier` is the {name} template. Each
    YOLO recipe's detector is a copy of the tiny model named after the recipe."""
    import shutil

    (out / "params.yaml").write_text(yaml.safe_dump({
        "system_eval": system_params, "recipes": recipes, "classifier_recipes": classifier_recipes}))
    det = str(tiny_inputs / "models" / "yolo_pose.pt")
    (out / "det").mkdir(exist_ok=True)
    for r in recipes:
        shutil.copy(det, out / "det" / f"{r}.pt")
    cmd = [sys.executable, "-m", "stages.system_eval", "--data", str(tiny_inputs / "pose" / "pose.yaml"),
           "--classes", str(tiny_inputs / "activity" / "classes.txt"), "--baseline", det, str(converted),
           "--detector", str(out / "det" / "{name}.pt"), "--classifier", str(classifier),
           "--metrics", str(out / "m.json"), "--sheet", str(out / "sheet.png"),
           "--pairs-out", str(out / "pairs.json"), "--params", str(out / "params.yaml")]
    return run(cmd, ROOT, check=check)


@pytest.fixture(scope="module")
def system_run(tmp_path_factory, tiny_inputs, tiny_onnx_classifier):
    out = tmp_path_factory.mktemp("system")
    return out, system_eval(out, tiny_inputs, tiny_onnx_classifier, tiny_onnx_classifier, PARAMS,
                            {"other": {}}, {"other": {}})


def test_a_yolo_recipe_needs_no_classifier_twin(tmp_path, tiny_inputs, tiny_onnx_classifier):
    """classifier_of pairs a YOLO recipe with a classifier recipe; one it does not name runs with the
    converted classifier, and a name that points nowhere is one line before any work."""
    import shutil

    twin = tmp_path / "cls" / "other" / "model.onnx"
    twin.parent.mkdir(parents=True)
    shutil.copy(tiny_onnx_classifier, twin)
    template = tmp_path / "cls" / "{name}" / "model.onnx"
    recipes, classifier_recipes = {"other": {}, "light": {}}, {"other": {}}
    system_eval(tmp_path, tiny_inputs, template, tiny_onnx_classifier, {**PARAMS, "classifier_of": {"other": "other"}},
                recipes, classifier_recipes)
    pairs = json.loads((tmp_path / "pairs.json").read_text())["pairs"]
    assert pairs["other"]["classifier"] == str(twin)
    assert pairs["light"]["classifier"] == pairs["baseline"]["classifier"] == str(tiny_onnx_classifier)
    assert set(json.loads((tmp_path / "m.json").read_text())) == {"baseline", "other", "light"}
    for bad, message in (({"light": "nosuch"}, "classifier_of.light: 'nosuch' is not a recipe of classifier_recipes"),
                         ({"nosuch": "other"}, "classifier_of.nosuch: no YOLO recipe of that name")):
        (tmp_path / "m.json").unlink(missing_ok=True)
        res = system_eval(tmp_path, tiny_inputs, template, tiny_onnx_classifier, {**PARAMS, "classifier_of": bad},
                          recipes, classifier_recipes, check=False)
        assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and message in res.stderr, res.stderr
        assert not (tmp_path / "m.json").exists()


def test_system_eval_writes_metrics_sheet_and_pairs(system_run, tiny_inputs):
    import cv2

    out, _ = system_run
    m = json.loads((out / "m.json").read_text())
    assert set(m) == {"baseline", "other"}
    for pair in m.values():
        assert pair["people"] > 0
        assert 0 <= pair["activity_acc_all"] <= pair["activity_acc_matched"] <= 1
        assert 0 <= pair["recall"] <= 1 and pair["latency_ms_min"] <= pair["latency_ms_p50"]
    assert m["baseline"]["speedup"] == 1.0
    sheet = cv2.imread(str(out / "sheet.png"))
    assert sheet.shape == (2 * 240, 2 * 320, 3)  # 2 images x 2 pairs of 320x240 tiles
    assert json.loads((out / "pairs.json").read_text())["pairs"]["other"]["detector"].endswith("det/other.pt")


def predict(args, check=True):
    return run([sys.executable, "-m", "tools.predict", *map(str, args)], ROOT, check=check)


def test_predict_prints_one_line_per_person_and_annotates(system_run, tiny_inputs, tmp_path):
    out, _ = system_run
    image = sorted((tiny_inputs / "pose" / "images" / "val").glob("*.jpg"))[0]
    res = predict([image, "--recipe", "other", "--pairs", out / "pairs.json", "--out", tmp_path / "ann"])
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(str(image))]
    assert lines and all(("activity" in ln and "box [" in ln) or "no people" in ln for ln in lines)
    assert (tmp_path / "ann" / f"{image.stem}.jpg").exists()


@pytest.mark.parametrize("make_source, recipe, message", [
    (lambda t: t / "missing.jpg", "baseline", "input {t}/missing.jpg: not found"),
    (lambda t: (t / "bad.jpg").write_text("x") and t / "bad.jpg", "baseline", "image {t}/bad.jpg: unreadable"),
    (lambda t: (t / "empty").mkdir() or t / "empty", "baseline", "no images in this folder"),
    (None, "nosuch", "--recipe nosuch: no such pair; known: baseline, other"),
])
def test_predict_bad_input(system_run, tiny_inputs, tmp_path, make_source, recipe, message):
    out, _ = system_run
    source = make_source(tmp_path) if make_source else sorted((tiny_inputs / "pose" / "images" / "val").glob("*.jpg"))[0]
    res = predict([source, "--recipe", recipe, "--pairs", out / "pairs.json", "--out", tmp_path / "ann"], check=False)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert message.format(t=tmp_path) in res.stderr


def test_predict_before_any_run_says_what_to_run(tiny_inputs, tmp_path):
    image = sorted((tiny_inputs / "pose" / "images" / "val").glob("*.jpg"))[0]
    res = predict([image, "--pairs", tmp_path / "pairs.json"], check=False)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "not found; run the pipeline first (`make repro`" in res.stderr
