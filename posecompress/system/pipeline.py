"""The two models as one system: the YOLO pose detector finds people, the classifier labels each.

Shared by the `system_eval` stage and the `predict` command. A detector is anything Ultralytics'
`YOLO()` loads for the pose task (.pt, FP32 or INT8 .onnx, an OpenVINO IR folder, or a quantize
stage's folder holding one); a classifier is an ONNX file taking the 51 normalised keypoint
values and returning class probabilities.
"""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posecompress.common.skeleton import LIMBS, normalise_keypoints
from posecompress.common.checks import InputError, existing_file
from posecompress.runtime.sessions import onnx_session
from posecompress.yolo.exported import exported_model, image_input, load_detector


@dataclass
class Person:
    box: np.ndarray  # xyxy, pixels
    confidence: float
    keypoints: np.ndarray  # (17, 3): x, y pixels, keypoint confidence
    activity: int
    probability: float


def keypoint_features(keypoints: np.ndarray, seen: float, occluded: float) -> np.ndarray:
    """The classifier's input from detected keypoints, in the form the training set uses:
    confidence >= `seen` counts as visible (1.0), >= `occluded` as labelled but hidden (0.5),
    below that as unlabelled (0)."""
    conf = keypoints[:, 2]
    visibility = np.where(conf >= seen, 1.0, np.where(conf >= occluded, 0.5, 0.0))
    return normalise_keypoints(keypoints[:, :2], visibility)


class ActivityClassifier:
    """An ONNX activity classifier run with onnxruntime on one thread count."""

    def __init__(self, path, threads: int = 2):
        self.session = onnx_session(existing_file(path, "classifier"), threads, "classifier")
        self.input = self.session.get_inputs()[0].name

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for a (n, 51) batch."""
        out = self.session.run(None, {self.input: features.astype(np.float32)})[0]
        if not np.allclose(out.sum(1), 1, atol=1e-3):  # logits, not probabilities
            e = np.exp(out - out.max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
        return out


class PosePipeline:
    """Detector + classifier: image in, people with boxes, keypoints and activities out."""

    def __init__(self, detector, classifier, conf: float = 0.25, kpt_seen: float = 0.5,
                 kpt_occluded: float = 0.2, threads: int = 2, imgsz=None):
        self.detector = load_detector(detector)
        self.classifier = ActivityClassifier(classifier, threads)
        # an exported detector runs at the size it was exported at: the file says it, nobody
        # repeats it (a checkpoint's own train size is Ultralytics' default for it)
        if imgsz is None and not str(detector).endswith(".pt"):
            imgsz = list(image_input(exported_model(detector))[1])
        self.size = {"imgsz": imgsz} if imgsz else {}
        self.conf = conf
        self.kpt_seen, self.kpt_occluded = kpt_seen, kpt_occluded

    def __call__(self, image: np.ndarray) -> list:
        """People found in a BGR image, one classifier call per person (batch 1)."""
        result = self.detector.predict(image, conf=self.conf, device="cpu", verbose=False, **self.size)[0]
        people = []
        if result.keypoints is None or len(result.boxes) == 0:
            return people
        boxes = result.boxes.xyxy.numpy()
        confs = result.boxes.conf.numpy()
        kpts = result.keypoints.data.numpy()
        for box, conf, kp in zip(boxes, confs, kpts):
            feats = keypoint_features(kp, self.kpt_seen, self.kpt_occluded)[None]
            probs = self.classifier(feats)[0]
            people.append(Person(box, float(conf), kp, int(probs.argmax()), float(probs.max())))
        return people


def read_image(path) -> np.ndarray:
    """A BGR image, or InputError naming the file."""
    img = cv2.imread(str(path))
    if img is None:
        raise InputError(f"image {path}: unreadable or not an image")
    return img


def draw_people(image: np.ndarray, people: list, class_names: list, colour=(0, 255, 255)) -> np.ndarray:
    """A copy of the image with each person's box, skeleton and activity drawn."""
    out = image.copy()
    for p in people:
        x0, y0, x1, y1 = (int(v) for v in p.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1)
        for a, b in LIMBS:
            if p.keypoints[a, 2] > 0.3 and p.keypoints[b, 2] > 0.3:
                cv2.line(out, tuple(int(v) for v in p.keypoints[a, :2]),
                         tuple(int(v) for v in p.keypoints[b, :2]), (255, 255, 255), 1)
        for x, y, c in p.keypoints:
            if c > 0.3:
                cv2.circle(out, (int(x), int(y)), 2, (0, 0, 255), -1)
        label = f"{class_names[p.activity]} {p.probability:.2f}"
        cv2.putText(out, label, (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1, cv2.LINE_AA)
    return out


def image_files(path) -> list:
    """One image, or the images in a folder (sorted); InputError if there are none."""
    p = existing_file(path, "input")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})
        if not files:
            raise InputError(f"input {p}: no images in this folder")
        return files
    return [p]


def class_names(path) -> list:
    """Class names, one per line."""
    names = [n for n in Path(existing_file(path, "class list")).read_text().splitlines() if n.strip()]
    if not names:
        raise InputError(f"class list {path}: empty")
    return names
