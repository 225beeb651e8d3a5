"""Stage system_eval: detector + classifier as one system, before and after compression.

    python -m stages.system_eval --data data/pose/pose.yaml --classes data/activity/classes.txt \
        --baseline outputs/yolo/onnx/baseline.onnx outputs/classifier/convert_tf/classifier.onnx \
        --detector 'outputs/yolo/quantize/{name}' \
        --classifier 'outputs/classifier/finetune/{name}/model.onnx' \
        --metrics metrics/system_eval.json --sheet plots/system_eval/samples.png \
        --pairs-out outputs/system_eval/pairs.json

Pairs: the baseline pair, then one per YOLO recipe of params.yaml (`recipes`), joining that
recipe's INT8 detector (quantize's folder: an .onnx file or an OpenVINO IR folder) with the classifier recipe system_eval.classifier_of names for it, or with
the converted classifier when it names none.

On the val images every pair detects people, detections are matched to ground-truth people
(IoU >= iou_match, highest confidence first), each matched person's keypoints go to the
classifier and its activity is compared with the ground truth. The first pair is the
reference for speed-ups. Pairs are timed round-robin image by image, so interference from
other work on the machine falls on all alike.
"""
import argparse

import cv2

from posecompress.common.checks import (InputError, dataset_images, load_params, named_path, param, pose_dataset_yaml,
                                        run_stage)
from posecompress.common.outputs import atomic_path, write_json
from posecompress.system.evaluation import evaluate, sample_sheet
from posecompress.system.pipeline import PosePipeline, class_names
from posecompress.yolo.exported import exported_model


def read_params(path) -> dict:
    """system_eval's section and the recipes, checked (the detectors' input size is their files')."""
    s = load_params(path, "system_eval")
    n = "system_eval."
    recipes, classifier_recipes = list(load_params(path, "recipes")), list(load_params(path, "classifier_recipes"))
    p = {"recipes": recipes, "classifier_recipes": classifier_recipes,
            "conf": param(s, "conf", float, n + "conf", 0.0, 1.0),
            "iou_match": param(s, "iou_match", float, n + "iou_match", 0.0, 1.0),
            "kpt_seen": param(s, "kpt_seen", float, n + "kpt_seen", 0.0, 1.0),
            "kpt_occluded": param(s, "kpt_occluded", float, n + "kpt_occluded", 0.0, 1.0),
            "threads": param(s, "threads", int, n + "threads", 1, 256),
            "max_images": param(s, "max_images", int, n + "max_images", 1),
            "sheet_images": param(s, "sheet_images", int, n + "sheet_images", 1, 64),
            "classifier_of": classifier_pairing(s, recipes, classifier_recipes)}
    if p["kpt_occluded"] > p["kpt_seen"]:
        raise InputError("parameter system_eval.kpt_occluded: must not exceed system_eval.kpt_seen")
    return p


def classifier_pairing(section: dict, recipes: list, classifier_recipes: list) -> dict:
    """system_eval.classifier_of: {YOLO recipe: the classifier recipe it is paired with}, checked; a
    YOLO recipe it does not name is paired with the converted, uncompressed classifier."""
    name = "system_eval.classifier_of"
    pairing = section.get("classifier_of") or {}
    if not isinstance(pairing, dict):
        raise InputError(f"parameter {name}: expected a mapping of YOLO recipe: classifier recipe")
    for yolo, classifier in pairing.items():
        if yolo not in recipes:
            raise InputError(f"parameter {name}.{yolo}: no YOLO recipe of that name in recipes")
        if classifier not in classifier_recipes:
            raise InputError(f"parameter {name}.{yolo}: {classifier!r} is not a recipe of classifier_recipes")
    return pairing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="pose dataset YAML with activities/ beside labels/")
    ap.add_argument("--classes", required=True)
    ap.add_argument("--baseline", nargs=2, required=True, metavar=("DETECTOR", "CLASSIFIER"))
    ap.add_argument("--detector", required=True, help="a recipe's detector; {name} stands for its name")
    ap.add_argument("--classifier", required=True,
                    help="a classifier recipe's classifier; {name} stands for its name (system_eval.classifier_of)")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--sheet", required=True, help="sample sheet PNG")
    ap.add_argument("--pairs-out", required=True, help="pairs file for `python -m tools.predict`")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    pair_paths = [("baseline", *a.baseline)] + [
        (r, str(exported_model(named_path(a.detector, r, "--detector"), f"detector ({r})")),
         str(named_path(a.classifier, p["classifier_of"][r], "--classifier")) if r in p["classifier_of"]
         else a.baseline[1])
        for r in p["recipes"]]
    names = class_names(a.classes)
    images = dataset_images(pose_dataset_yaml(a.data), "val")[:p["max_images"]]
    pairs = {name: PosePipeline(det, cls, p["conf"], p["kpt_seen"], p["kpt_occluded"], p["threads"])
             for name, det, cls in pair_paths}
    metrics, detections = evaluate(pairs, images, p["iou_match"])
    sheet = sample_sheet(images, detections, names, p["sheet_images"])
    with atomic_path(a.sheet) as tmp:
        cv2.imwrite(str(tmp), sheet)
    write_json(a.metrics, metrics)
    # paths as given, relative to the project root where dvc runs the stage
    write_json(a.pairs_out, {"settings": p, "classes": a.classes,
                             "pairs": {name: {"detector": det, "classifier": cls} for name, det, cls in pair_paths}})
    for name, m in metrics.items():
        acts = (f"activity accuracy {m['activity_acc_all']:.3f} of all people ({m['activity_acc_matched']:.3f} of "
                f"matched)" if "activity_acc_all" in m else "activity not measured (no activity files)")
        print(f"{name}: recall {m['recall']:.3f}, {acts}, {m['latency_ms_mean']:.1f} ms/image, "
              f"speed-up {m['speedup']:.2f}x")


if __name__ == "__main__":
    run_stage(main)
