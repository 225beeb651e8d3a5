"""Stage check: the whole pipeline's parameters and inputs, checked in seconds before any long stage.

    python -m stages.check --model data/models/yolo_pose.pt --data data/pose/pose.yaml \
        --classifier data/models/activity_classifier.keras --activity data/activity \
        --census metrics/check.json

Every stage checks its own parameters and inputs before it works, but under `dvc repro` a stage
starts only when those before it have finished: a bad classifier recipe would stop the pipeline
after an hour of YOLO training. Every stage that starts from the inputs depends on what this one
writes, so `dvc repro` runs it first, and it does up front what each stage would:
- recipe names (letters, digits, `_` and `-`: DVC reads a dot as a step into a section);
- every stage's parameter reader, for the baseline and every recipe;
- the pose dataset: every image and label file, and each split's census (dataset_census), refusing
  a split where some images have a label file and others none;
- the YOLO checkpoint and the Keras classifier load, and each classifier recipe's method suits it.

Writes the census of the pose dataset (per split: images, people, empty label files, images with
no label file; val: activity files). It changes only when the data does, so a parameter edit
re-runs this stage alone, not what depends on it.
"""
import argparse
import re

from posecompress.common.checks import InputError, existing_file, load_params, pose_dataset_yaml, run_stage
from posecompress.common.dataset_census import dataset_census
from posecompress.common.outputs import write_json

RECIPE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def recipe_names(path, section: str) -> list:
    """The recipe names of a params.yaml section, each checked."""
    names = list(load_params(path, section))
    for name in names:
        if not RECIPE_NAME.fullmatch(str(name)):
            raise InputError(f"parameter {section}.{name}: a recipe name holds letters, digits, _ and - only "
                             f"(DVC reads {section}.{name}.prune as a path of sections)")
    return names


def read_params(path) -> dict:
    """Every stage's parameters, read as the stage reads them; returns what the later checks need."""
    from stages import (benchmark, classifier_benchmark, classifier_finetune, classifier_prune, convert_tf,
                        eval_baseline, export_onnx, finetune, peer, prune, quantize, report, system_eval)

    recipes, classifier_recipes = recipe_names(path, "recipes"), recipe_names(path, "classifier_recipes")
    for reader in (eval_baseline, export_onnx, benchmark, convert_tf, classifier_benchmark, system_eval,
                   report, peer):
        reader.read_params(path)
    quantize.read_params(path)
    for r in recipes:
        prune.read_params(path, r)
        finetune.read_params(path, r)
        quantize.read_params(path, r)
    formats = load_params(path, "peers").get("formats")
    if not isinstance(formats, list) or any(f not in peer.FORMATS for f in formats):
        raise InputError(f"parameter peers.formats: {formats!r}, expected a list of {', '.join(peer.FORMATS)}")
    return {"classifier": {r: (classifier_prune.read_params(path, r), classifier_finetune.read_params(path, r))
                           for r in classifier_recipes}}


def check_classifier(model_path, classifier_recipes: dict) -> None:
    """The Keras model loads, and every structured classifier recipe has hidden Dense layers to narrow."""
    from posecompress.classifier.keras_structure import hidden_dense_layers
    from posecompress.classifier.tf_conversion import load_keras

    if existing_file(model_path, "TensorFlow model").is_dir():
        return  # a SavedModel directory has no layers to read: convert_tf checks it
    model = load_keras(model_path)
    for recipe, (prune_params, _) in classifier_recipes.items():
        if prune_params["method"] == "structured" and not hidden_dense_layers(model):
            raise InputError(f"parameter classifier_recipes.{recipe}.prune.method: structured removes neurons of "
                             f"Dense layers that feed another Dense layer, and {model_path} has none; use "
                             f"l1_unstructured")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the YOLO pose baseline checkpoint")
    ap.add_argument("--data", required=True, help="pose dataset YAML")
    ap.add_argument("--classifier", required=True, help="the Keras activity classifier")
    ap.add_argument("--activity", required=True, help="activity dataset folder")
    ap.add_argument("--census", required=True, help="census JSON to write")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    from posecompress.classifier.models import load_activity
    from posecompress.yolo.models import load_pose_model

    p = read_params(a.params)
    census = dataset_census(pose_dataset_yaml(a.data))
    load_pose_model(existing_file(a.model, "model"))
    load_activity(a.activity)
    check_classifier(a.classifier, p["classifier"])
    write_json(a.census, census)
    for split, c in census.items():
        acts = f", {c['activity_files']} activity files" if "activity_files" in c else ""
        print(f"{split}: {c['images']} images, {c['people']} people, {c['empty_label_files']} empty label files, "
              f"{c['no_label_file']} without one{acts}")


if __name__ == "__main__":
    run_stage(main)
