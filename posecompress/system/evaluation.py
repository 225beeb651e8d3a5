"""The pose pair measured on a labelled dataset: detections matched to the ground-truth people,
their activities compared, the pairs timed in turns.

On the val images every pair detects people, detections are matched to ground-truth people
(IoU >= iou_match, highest confidence first), each matched person's keypoints go to the
classifier and its activity is compared with the ground truth. The first pair is the
reference for speed-ups. Pairs are timed round-robin image by image, so interference from
other work on the machine falls on all alike.
"""
from pathlib import Path

import cv2
import numpy as np

from posecompress.common.checks import InputError
from posecompress.common.dataset_census import activity_file
from posecompress.runtime.timing import latency, round_robin, speedup_spread
from posecompress.system.pipeline import draw_people, read_image


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
