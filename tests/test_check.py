"""The check stage: the whole pipeline's parameters and inputs refused in its first minute, and the
census of what the pose dataset holds."""
import json
import shutil
import sys

import pytest
import yaml

from posecompress.common.checks import InputError
from posecompress.common.dataset_census import dataset_census
from tests.conftest import ROOT, SYSTEM_PARAMS, labelled_people, make_project, run, system_eval_stage


def check(tmp_path, data, params, classifier=None, check=True):
    """stages.check on `data` (a data/ folder) with these params; returns the finished process."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, "-m", "stages.check", "--model", str(data / "models" / "yolo_pose.pt"),
           "--data", str(data / "pose" / "pose.yaml"), "--classifier", str(classifier or data / "models" / "activity_classifier.keras"),
           "--activity", str(data / "activity"), "--census", str(tmp_path / "census.json"),
           "--params", str(tmp_path / "params.yaml")]
    return run(cmd, ROOT, check=check)


def refused(res, message: str) -> None:
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert message in last, res.stderr


@pytest.fixture
def data_copy(tmp_path, tiny_inputs):
    """A copy of the tiny data/ folder the test may damage."""
    return shutil.copytree(tiny_inputs, tmp_path / "data", ignore=shutil.ignore_patterns("*.cache"))


def test_the_census_counts_what_each_split_holds(tiny_data):
    census = dataset_census(tiny_data / "pose" / "pose.yaml")
    labels = sorted((tiny_data / "pose" / "labels" / "val").glob("*.txt"))
    people = sum(1 for f in labels for line in f.read_text().splitlines() if line.split())
    assert census["val"] == {"images": 6, "people": people, "empty_label_files": 0, "no_label_file": 0,
                             "activity_files": 6}
    assert census["train"]["images"] == 12 and "activity_files" not in census["train"]


def test_a_split_missing_some_label_files_is_refused_unless_background_is_declared(tmp_path, tiny_data):
    """Ultralytics would count the images as background and their people as false positives."""
    pose = shutil.copytree(tiny_data / "pose", tmp_path / "pose", ignore=shutil.ignore_patterns("*.cache"))
    gone = sorted((pose / "labels" / "val").glob("*.txt"))[:2]
    for f in gone:
        f.unlink()
    (pose / "labels" / "train" / sorted(p.name for p in (pose / "labels" / "train").iterdir())[0]).write_text("")
    with pytest.raises(InputError, match=f"2 of the 6 val images have no label file \\(first: {gone[0]}\\)"):
        dataset_census(pose / "pose.yaml")
    spec = yaml.safe_load((pose / "pose.yaml").read_text())
    (pose / "pose.yaml").write_text(yaml.safe_dump({**spec, "background_images": "yes"}))
    with pytest.raises(InputError, match="background_images is 'yes', expected true or false"):
        dataset_census(pose / "pose.yaml")
    (pose / "pose.yaml").write_text(yaml.safe_dump({**spec, "background_images": True}))
    census = dataset_census(pose / "pose.yaml")
    assert census["val"]["no_label_file"] == 2 and census["train"]["empty_label_files"] == 1


def test_activity_files_for_some_val_images_only_are_refused(tmp_path, tiny_data):
    pose = shutil.copytree(tiny_data / "pose", tmp_path / "pose", ignore=shutil.ignore_patterns("*.cache"))
    sorted((pose / "activities" / "val").glob("*.txt"))[0].unlink()
    with pytest.raises(InputError, match="1 of the 6 val images have no activity file"):
        dataset_census(pose / "pose.yaml")
    shutil.rmtree(pose / "activities")
    assert dataset_census(pose / "pose.yaml")["val"]["activity_files"] == 0


@pytest.mark.parametrize("change, message", [
    (lambda p: p["recipes"].update({"v1.1": p["recipes"]["fast"]}),
     "parameter recipes.v1.1: a recipe name holds letters, digits, _ and - only"),
    (lambda p: p.update(recipes={}), "system_eval.classifier_of.reference: no YOLO recipe of that name"),
    (lambda p: p["classifier_recipes"]["fast"]["finetune"].update(lr="fast"),
     "parameter classifier_recipes.fast.finetune.lr: expected float"),
    (lambda p: p["recipes"]["fast"]["quantize"].update(mode="tensorrt"),
     "parameter recipes.fast.quantize.mode: 'tensorrt' is not one of"),
    (lambda p: p["peers"].update(formats=["tflite"]), "parameter peers.formats: ['tflite'], expected a list of"),
])
def test_every_stage_parameter_is_checked_before_any_work(tmp_path, tiny_inputs, change, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    change(params)
    res = check(tmp_path, tiny_inputs, params, check=False)
    refused(res, message)
    assert not (tmp_path / "census.json").exists()


def test_a_structured_classifier_recipe_needs_hidden_dense_layers(tmp_path, tiny_inputs):
    """A Conv1D classifier converts fine, but structured pruning has no hidden Dense layer to narrow:
    refused by the check, naming the recipe, not after the YOLO track."""
    import keras

    from posecompress.classifier.keras_structure import hidden_dense_layers

    conv = keras.Sequential([keras.Input((51,)), keras.layers.Reshape((51, 1)), keras.layers.Conv1D(8, 3),
                             keras.layers.Flatten(), keras.layers.Dense(20, activation="softmax")])
    dense = keras.Sequential([keras.Input((51,)), keras.layers.Dense(32, name="hidden"), keras.layers.ReLU(),
                              keras.layers.Dropout(0.1), keras.layers.Dense(20, activation="softmax")])
    assert hidden_dense_layers(conv) == [] and hidden_dense_layers(dense) == ["hidden"]
    conv.save(tmp_path / "conv.keras")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    res = check(tmp_path, tiny_inputs, params, classifier=tmp_path / "conv.keras", check=False)
    refused(res, "parameter classifier_recipes.fast.prune.method: structured removes neurons of Dense layers")
    params["classifier_recipes"]["fast"]["prune"] = {"method": "l1_unstructured", "amount": 0.5, "scope": "layer"}
    check(tmp_path, tiny_inputs, params, classifier=tmp_path / "conv.keras")
    assert json.loads((tmp_path / "census.json").read_text())["val"]["images"] == 6


def test_dvc_repro_stops_at_the_check_before_any_other_stage(tmp_path, tiny_inputs):
    """A recipe name DVC cannot address (a dot in it) stops `dvc repro` in the check stage, which
    every stage starting from the inputs depends on; no other stage runs."""
    repo = make_project(tmp_path / "project", tiny_inputs)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["recipes"]["v1.1"] = params["recipes"]["reference"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = run(["dvc", "repro"], repo, check=False)
    assert res.returncode != 0
    assert "a recipe name holds letters, digits, _ and - only" in res.stderr + res.stdout
    ran = [line for line in res.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'check':"], ran
    assert not (repo / "metrics" / "eval_baseline.json").exists()


def test_system_eval_without_activity_files_measures_detection_alone(tmp_path, data_copy, tiny_onnx_classifier):
    shutil.rmtree(data_copy / "pose" / "activities")
    out = tmp_path / "out"
    out.mkdir()
    classifier = tiny_onnx_classifier
    res = system_eval_stage(out, data_copy, classifier, classifier, SYSTEM_PARAMS, {"other": {}}, {"other": {}})
    m = json.loads((out / "m.json").read_text())
    people = labelled_people(data_copy, SYSTEM_PARAMS["max_images"])
    assert all(pair["people"] == people > 0 and "activity_acc_all" not in pair for pair in m.values())
    assert m["other"]["recall"] == m["baseline"]["recall"]  # a copy of the same detector
    assert "activity not measured (no activity files)" in res.stdout


def test_the_verdict_names_a_change_in_the_data(tmp_path):
    from posecompress.review.verdict import census_change

    base = {"check.json": {"val": {"images": 100, "no_label_file": 0}}}
    head = {"check.json": {"val": {"images": 100, "no_label_file": 10}}}
    assert census_change(base, head) == "the data: val no_label_file 0 → 10"
    assert census_change(base, base) == "" and census_change({}, {}) == ""
