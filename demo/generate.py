"""Generate the demo inputs: a YOLO-pose image set of stick people and an activity dataset.

    python -m demo.generate --out data --train 320 --val 100 --activity-train 8000 --activity-val 2000

Every image holds 1-4 articulated people (head, torso, thick limbs) at varied scale, colour
and pose over a textured, cluttered background, truncated at the borders and occluding each
other. Visibility flags follow what is drawn: 0 outside the image, 1 covered by a person
drawn later, 2 visible. Each person carries one of the 20 MPII activities (the pose comes
from that activity's prototype), written per image under activities/<split>/ in label order.
The activity dataset holds normalised keypoints (`skeleton.normalise_keypoints`) and labels.
Same seed, same bytes.
"""
import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
import yaml

from demo.skeleton import (ACTIVITIES, FLIP_IDX, LIMBS, activity_prototypes, head_centre,
                           keypoints_from_pose, normalise_keypoints, sample_pose)

# Gaussian noise (radians) around each activity's prototype pose. The activity dataset's sets
# how much activities overlap (about 65% reachable accuracy); people drawn in images vary less,
# so that a yolov8n-pose trained from scratch on a few hundred images learns their keypoints
# in tens of CPU epochs (at 0.7 it still had pose mAP50 near 0 after 33 epochs, at 0.35 with
# people up to 95% of the image height placed anywhere, 0.26 after 80).
ACTIVITY_POSE_NOISE = 0.7
IMAGE_POSE_NOISE = 0.25


def textured_background(rng, height: int, width: int) -> np.ndarray:
    """Smooth colour noise plus random rectangles, circles and lines as clutter."""
    base = rng.integers(40, 220, 3)
    noise = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1, 3))
    img = base + 25 * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 9)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 80)), y + int(rng.integers(10, 80))), colour, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), int(rng.integers(5, 30)), colour, -1)
        else:
            cv2.line(img, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour,
                     int(rng.integers(1, 4)))
    return img


def draw_person(img: np.ndarray, mask: np.ndarray, kp: np.ndarray, height: float, rng) -> None:
    """Draw one person onto img and its silhouette onto mask (both in place)."""
    # Left and right limbs in different shades of the clothing, outlined, with darker joints
    # and a face (eyes, nose, ears): as on a real person, the keypoints and which side is
    # which can be read from the picture even where limbs cross the body or each other.
    cloth = rng.integers(40, 216, 3)
    shade = {"torso": cloth, "left": np.clip(cloth * 0.6, 0, 255), "right": np.clip(cloth * 0.6 + 100, 0, 255)}
    shade = {k: tuple(int(c) for c in v) for k, v in shade.items()}
    skin = tuple(int(c) for c in rng.integers(60, 240, 3))
    dark = tuple(int(c * 0.4) for c in skin)
    thick = max(2, int(0.055 * height))
    pt = lambda i: tuple(int(round(v)) for v in kp[i])  # noqa: E731
    head, r = tuple(int(v) for v in head_centre(kp)), max(3, int(0.065 * height))
    torso = np.array([pt(5), pt(6), pt(12), pt(11)], dtype=np.int32)
    cv2.fillPoly(mask, [torso], 255)
    cv2.fillPoly(img, [torso], shade["torso"])
    cv2.polylines(img, [torso], True, (20, 20, 20), 1, cv2.LINE_AA)
    for a, b in LIMBS:
        colour = shade["left"] if a % 2 == 1 else shade["right"]  # odd COCO indices are left
        cv2.line(mask, pt(a), pt(b), 255, thick)
        cv2.line(img, pt(a), pt(b), (20, 20, 20), thick + 2, cv2.LINE_AA)
        cv2.line(img, pt(a), pt(b), colour, thick, cv2.LINE_AA)
    for joint in (7, 8, 13, 14, 9, 10, 15, 16):
        cv2.circle(img, pt(joint), max(1, thick // 2), (20, 20, 20), -1, cv2.LINE_AA)
    neck = tuple(int(v) for v in (kp[5] + kp[6]) / 2)
    for canvas, c_skin in ((img, skin), (mask, 255)):
        cv2.line(canvas, neck, head, c_skin, max(2, thick // 2))
        cv2.circle(canvas, head, r, c_skin, -1)
    for k, size in ((3, 0.35), (4, 0.35), (1, 0.2), (2, 0.2), (0, 0.25)):
        cv2.circle(img, pt(k), max(1, int(size * r)), dark, -1, cv2.LINE_AA)


def _inside(kp: np.ndarray, width: int, height: int) -> np.ndarray:
    return (kp[:, 0] >= 0) & (kp[:, 0] < width) & (kp[:, 1] >= 0) & (kp[:, 1] < height)


def render_image(rng, prototypes, width: int, height: int):
    """One image and its people: list of (box xyxy, keypoints (17,3), activity)."""
    img = textured_background(rng, height, width)
    people = []
    count = int(rng.integers(1, 5))
    # one slot of the width each, jittered: people overlap and cross the borders now and then,
    # not in most images
    slots = (rng.permutation(count) + 0.5 + rng.uniform(-0.3, 0.3, count)) / count
    for slot in slots:
        activity = int(rng.integers(len(ACTIVITIES)))
        size = float(rng.uniform(0.5, 0.85) * height)
        hip = np.array([np.clip(slot, 0.03, 0.97) * width, rng.uniform(0.5, 0.75) * height])
        kp = keypoints_from_pose(sample_pose(prototypes, activity, rng, IMAGE_POSE_NOISE), size, hip)
        if _inside(kp, width, height).sum() < 6:  # mostly out of frame: not drawn at all
            continue
        mask = np.zeros((height, width), np.uint8)
        draw_person(img, mask, kp, size, rng)
        people.append((kp, mask, activity))
    labels = []
    for i, (kp, mask, activity) in enumerate(people):
        later = np.zeros_like(mask)
        for _, other, _ in people[i + 1:]:
            later |= other
        ys, xs = np.nonzero(mask)
        own_visible = mask & ~later
        inside = _inside(kp, width, height)
        # people almost wholly hidden behind others are left unlabelled, as COCO does
        if len(xs) < 40 or own_visible.sum() < 0.25 * mask.sum():
            continue
        vis = np.zeros(17)
        for k in np.nonzero(inside)[0]:
            vis[k] = 1 if later[int(kp[k, 1]), int(kp[k, 0])] else 2
        kpv = np.concatenate([np.where(inside[:, None], kp, 0.0), vis[:, None]], 1)
        labels.append(((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), kpv, activity))
    return img, labels


def write_pose_split(root: Path, split: str, count: int, rng, prototypes, width, height):
    """Write images/, labels/ and activities/ for one split."""
    for sub in ("images", "labels", "activities"):
        (root / sub / split).mkdir(parents=True, exist_ok=True)
    for n in range(count):
        img, people = render_image(rng, prototypes, width, height)
        stem = f"{split}_{n:05d}"
        cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        rows, acts = [], []
        for (x0, y0, x1, y1), kpv, activity in people:
            box = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]
            kps = [v for x, y, vis in kpv for v in (x / width, y / height, int(vis))]
            rows.append("0 " + " ".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in box + kps))
            acts.append(str(activity))
        (root / "labels" / split / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
        (root / "activities" / split / f"{stem}.txt").write_text("\n".join(acts) + ("\n" if acts else ""))


def activity_rows(rng, prototypes, count: int):
    """Normalised keypoints and activity of `count` people, some keypoints hidden or missing."""
    for _ in range(count):
        activity = int(rng.integers(len(ACTIVITIES)))
        kp = keypoints_from_pose(sample_pose(prototypes, activity, rng, ACTIVITY_POSE_NOISE), 100.0, np.zeros(2))
        kp += rng.normal(0, 1.5, kp.shape)  # labelling / detector jitter
        vis = rng.choice([0.0, 0.5, 1.0], size=17, p=[0.05, 0.15, 0.80])
        yield list(normalise_keypoints(kp, vis)) + [activity]


def write_activity_split(path: Path, rows) -> None:
    header = [f"{name}_{axis}" for name in _kp_names() for axis in ("x", "y", "v")] + ["label"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([f"{v:.4f}" for v in row[:-1]] + [row[-1]])


def _kp_names():
    from demo.skeleton import KEYPOINT_NAMES
    return KEYPOINT_NAMES


def generate(out: Path, n_train: int, n_val: int, n_act_train: int, n_act_val: int,
             width: int = 320, height: int = 240, seed: int = 0) -> None:
    """Write the demo dataset under out/pose and out/activity."""
    prototypes = activity_prototypes(seed)
    rng = np.random.default_rng(seed + 1)
    pose = out / "pose"
    write_pose_split(pose, "train", n_train, rng, prototypes, width, height)
    write_pose_split(pose, "val", n_val, rng, prototypes, width, height)
    rng = np.random.default_rng(seed + 2)  # the activity set does not depend on the image count
    spec = {"train": "images/train", "val": "images/val", "kpt_shape": [17, 3],
            "flip_idx": FLIP_IDX, "names": {0: "person"}}
    (pose / "pose.yaml").write_text(
        "# Ultralytics YOLO pose dataset; paths are relative to this file's folder.\n"
        + yaml.safe_dump(spec, sort_keys=False))
    act = out / "activity"
    act.mkdir(parents=True, exist_ok=True)
    write_activity_split(act / "train.csv", activity_rows(rng, prototypes, n_act_train))
    write_activity_split(act / "val.csv", activity_rows(rng, prototypes, n_act_val))
    (act / "classes.txt").write_text("\n".join(ACTIVITIES) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data"))
    ap.add_argument("--train", type=int, default=320, help="pose train images")
    ap.add_argument("--val", type=int, default=100, help="pose val images")
    ap.add_argument("--activity-train", type=int, default=8000)
    ap.add_argument("--activity-val", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    generate(a.out, a.train, a.val, a.activity_train, a.activity_val, seed=a.seed)
    print(f"wrote demo dataset to {a.out}/pose and {a.out}/activity")


if __name__ == "__main__":
    main()
