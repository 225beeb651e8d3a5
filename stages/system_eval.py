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
from pathlib import Path

import cv2
import numpy as np

from posecompress.common.checks import (InputError, dataset_images, load_params, named_path, param, pose_dataset_yaml,
                           run_stage)
from posecompress.common.dataset_census import activity_file
from posecompress.common.outputs import atomic_path, write_json
from posecompress.runtime.timing import latency, round_robin, speedup_spread
from posecompress.runtime.pipeline import PosePipeline, class_names, draw_people, read_image
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


def ground_truth(image: Path, width: int, height: int):
    """Boxes (n, 4, xyxy pixels) and activities (n,) of the labelled people in one image; activities
    None where the image has no activity file. An image without a label file shows no one."""
    labels = image.parent.parent.parent / "labels" / image.parent.name / f"{image.stem}.txt"
    acts = activity_file(image)
    # Ultralytics reads an image without a label file as background; the check stage lets one through
    # only where the dataset YAML says background_images: true (posecompress/common/dataset_census.py)
    text = labels.read_text() if labels.is_file() else ""
    rows = np.array([list(map(float, ln.split()[:5])) for ln in text.splitlines() if ln.strip()])
    activities = np.array([int(a) for a in acts.read_text().split()], dtype=int) if acts.exists() else None
    if len(rows) == 0:
        return np.zeros((0, 4)), activities
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), activities


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of two sets of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def match(people: list, gt_boxes: np.ndarray, threshold: float) -> dict:
    """Ground-truth index -> detected person, greedily by detection confidence."""
    if not people or len(gt_boxes) == 0:
        return {}
    order = sorted(range(len(people)), key=lambda i: -people[i].confidence)
    iou = box_iou(np.array([p.box for p in people]), gt_boxes)
    matched = {}
    for i in order:
        candidates = [(iou[i, g], g) for g in range(len(gt_boxes)) if g not in matched and iou[i, g] >= threshold]
        if candidates:
            matched[max(candidates)[1]] = people[i]
    return matched


def evaluate(pairs: dict, images: list, iou_match: float):
    """Per pair: recall, activity accuracy (matched / all people), latency; and the detections."""
    frames = [read_image(p) for p in images]
    truth = [ground_truth(p, img.shape[1], img.shape[0]) for p, img in zip(images, frames)]  # checked first
    with_activities = sum(acts is not None for _, acts in truth)
    if 0 < with_activities < len(images):
        missing = next(activity_file(p) for p, (_, acts) in zip(images, truth) if acts is None)
        raise InputError(f"dataset: {len(images) - with_activities} of the {len(images)} val images have no "
                         f"activity file (first: {missing}); every image needs one, or none (detection alone)")
    # one untimed call each first: a first call (session and Ultralytics set-up) costs 100x a later one
    times, detections = round_robin(pairs, frames, frames[0], 1, keep=True, desc="system_eval")
    reference = np.mean(times[next(iter(pairs))])
    metrics = {}
    for name in pairs:
        found = [match(people, boxes, iou_match) for people, (boxes, _) in zip(detections[name], truth)]
        gt = sum(len(boxes) for boxes, _ in truth)
        matched = sum(len(f) for f in found)
        metrics[name] = {"people": gt, "recall": matched / max(gt, 1)}
        if with_activities:
            correct = sum(int(p.activity == acts[g]) for f, (_, acts) in zip(found, truth) for g, p in f.items())
            metrics[name].update(activity_acc_matched=correct / max(matched, 1), activity_acc_all=correct / max(gt, 1))
        metrics[name].update(**latency(times[name]), speedup=float(reference / np.mean(times[name])),
                             noise_band=speedup_spread(times[next(iter(pairs))], times[name], np.mean))
    return metrics, detections


def sample_sheet(images: list, detections: dict, names: list, count: int) -> np.ndarray:
    """A grid: one row per image, one column per pair, skeletons and activities drawn."""
    rows = []
    for i, path in enumerate(images[:count]):
        img = read_image(path)
        tiles = []
        for pair, people in detections.items():
            tile = draw_people(img, people[i], names)
            cv2.putText(tile, pair, (4, tile.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


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
