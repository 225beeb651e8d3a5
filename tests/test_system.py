"""Detector + classifier as one system: matching, system_eval's metrics, the predict command."""
import json
import sys

import cv2
import numpy as np
import pytest
import yaml

from posecompress.system.pipeline import Person
from posecompress.system.evaluation import box_iou, match
from tests.conftest import ROOT, SYSTEM_PARAMS, labelled_people, run, system_eval_stage


def person(box, conf):
    return Person(np.array(box, float), conf, np.zeros((17, 3)), 0, 1.0)


def test_match_takes_the_most_confident_detection_above_the_iou_threshold():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    weak, strong, stray = person([0, 0, 10, 9], 0.4), person([1, 0, 10, 10], 0.9), person([50, 50, 60, 60], 0.99)
    assert box_iou(gt, gt).round(6).tolist() == [[1, 0], [0, 1]]
    found = match([weak, strong, stray], gt, 0.5)
    assert list(found) == [0] and found[0] is strong
    assert match([person([0, 0, 10, 4], 0.9)], gt, 0.5) == {}  # IoU 0.4


def test_detected_keypoints_become_the_features_the_classifier_was_trained_on():
    """A detection's features (keypoint_features) are the activity set's row of the same keypoints
    (demo.generate.activity_rows: normalise_keypoints of the keypoints and their visibility 1,
    0.5 or 0): a keypoint the detector scores at least kpt_seen counts as visible, one at least
    kpt_occluded as labelled but hidden, one below as unlabelled wherever the detector put it; and
    where the person stands in the image, and how tall, does not matter."""
    from demo.generate import ACTIVITY_POSE_NOISE
    from demo.skeleton import activity_prototypes, keypoints_from_pose, normalise_keypoints, sample_pose
    from posecompress.system.pipeline import keypoint_features

    seen, occluded = SYSTEM_PARAMS["kpt_seen"], SYSTEM_PARAMS["kpt_occluded"]
    pose = sample_pose(activity_prototypes(0), 12, np.random.default_rng(0), ACTIVITY_POSE_NOISE)
    xy = keypoints_from_pose(pose, 100.0, np.zeros(2))
    visibility = np.array([1.0, 0.5, 0.0] * 5 + [1.0, 0.5])
    training = normalise_keypoints(xy, visibility)  # the row activity_rows writes for this person
    # the detector's confidence in each keypoint: on, above and below each threshold
    scores = {1.0: [seen, 0.9, 1.0], 0.5: [occluded, (seen + occluded) / 2, np.nextafter(seen, 0)],
              0.0: [0.0, np.nextafter(occluded, 0), occluded / 2]}
    conf = np.array([scores[v][i // 3 % 3] for i, v in enumerate(visibility)])
    detected = np.c_[xy, conf]
    detected[visibility == 0, :2] = [[900.0, -40.0]]  # keypoints the detector hardly sees: anywhere
    np.testing.assert_array_equal(keypoint_features(detected, seen, occluded), training)
    elsewhere = detected * [2.0, 2.0, 1.0] + [160.0, 96.0, 0.0]  # twice as tall, in another place
    np.testing.assert_allclose(keypoint_features(elsewhere, seen, occluded), training, rtol=0, atol=1e-6)


# A hand-made val split of 100 x 80 images, each one flat grey level so a scripted detector knows
# it: people as xyxy pixel boxes with their activities; None: a background image, no label file.
W, H = 100, 80
SCENE = {"a": (10, [((10, 10, 40, 70), 3), ((60, 10, 90, 70), 7)]),
         "b": (20, [((20, 20, 80, 60), 5)]),
         "c": (30, None)}


def scene_dataset(root, activities=True, background=True):
    """SCENE as a pose dataset under root (val split; train: the same images), its YAML's path."""
    for split in ("train", "val"):
        for sub in ("images", "labels") + (("activities",) if activities else ()):
            (root / sub / split).mkdir(parents=True)
        for stem, (grey, people) in SCENE.items():
            cv2.imwrite(str(root / "images" / split / f"{stem}.png"), np.full((H, W, 3), grey, np.uint8))
            if activities:
                (root / "activities" / split / f"{stem}.txt").write_text("".join(f"{a}\n" for _, a in people or []))
            if people is not None:
                rows = [f"0 {(x0 + x1) / 2 / W} {(y0 + y1) / 2 / H} {(x1 - x0) / W} {(y1 - y0) / H}" + " 0" * 51
                        for (x0, y0, x1, y1), _ in people]
                (root / "labels" / split / f"{stem}.txt").write_text("".join(f"{r}\n" for r in rows))
    spec = {"path": str(root), "train": "images/train", "val": "images/val", "kpt_shape": [17, 3],
            "names": {0: "person"}, **({"background_images": True} if background else {})}
    (root / "pose.yaml").write_text(yaml.safe_dump(spec))
    return root / "pose.yaml"


class Scripted:
    """A detector + classifier pair that finds, in each SCENE image (told by its grey level), the
    people it is given for that image."""

    def __init__(self, found: dict):
        self.found = {SCENE[stem][0]: people for stem, people in found.items()}

    def __call__(self, image):
        return self.found.get(int(image[0, 0, 0]), [])


def found(box, conf, activity):
    return Person(np.array(box, float), conf, np.zeros((17, 3)), activity, 1.0)


def test_system_eval_counts_matched_people_and_their_activities(tmp_path):
    """Recall is matched people over labelled people; activity accuracy counts the matched people
    classified right, over the matched and over all. Worked by hand on SCENE: `exact` finds all
    three people (on `a` the first person twice, the less confident detection with the wrong
    activity; the second person with activity 2, not 7) and one person on the background image;
    `partial` finds `a`'s second person alone, its box on the first one too far off (IoU 0.33)."""
    from posecompress.common.checks import dataset_images
    from posecompress.system.evaluation import evaluate

    images = dataset_images(scene_dataset(tmp_path / "pose"), "val")
    (p1, _), (p2, _) = SCENE["a"][1]
    (p3, _), = SCENE["b"][1]
    pairs = {"exact": Scripted({"a": [found((11, 10, 40, 70), 0.3, 7), found(p1, 0.9, 3), found(p2, 0.8, 2)],
                                "b": [found(p3, 0.7, 5)], "c": [found((0, 0, 50, 50), 0.9, 1)]}),
             "partial": Scripted({"a": [found((25, 10, 55, 70), 0.9, 3), found(p2, 0.6, 7)]})}
    metrics, detections = evaluate(pairs, images, 0.5)
    figures = ("people", "recall", "activity_acc_matched", "activity_acc_all")
    assert {k: metrics["exact"][k] for k in figures} == pytest.approx(
        {"people": 3, "recall": 3 / 3, "activity_acc_matched": 2 / 3, "activity_acc_all": 2 / 3})
    assert {k: metrics["partial"][k] for k in figures} == pytest.approx(
        {"people": 3, "recall": 1 / 3, "activity_acc_matched": 1 / 1, "activity_acc_all": 1 / 3})
    assert [len(d) for d in detections["exact"]] == [3, 1, 1]  # every detection kept, in image order


def test_a_background_image_without_a_label_file_shows_no_one(tmp_path):
    """The dataset check accepts a val image with no label file when the dataset YAML says
    background_images: true; system_eval reads it as an image of no one, with or without activity
    files, and a detection there matches nobody."""
    from posecompress.common.checks import InputError, dataset_images
    from posecompress.common.dataset_census import dataset_census
    from posecompress.system.evaluation import evaluate, ground_truth

    data = scene_dataset(tmp_path / "pose")
    assert dataset_census(data)["val"]["no_label_file"] == 1
    with pytest.raises(InputError, match="background_images: true"):
        dataset_census(scene_dataset(tmp_path / "unmarked", background=False))
    images = dataset_images(data, "val")
    boxes, activities = ground_truth(images[2], W, H)
    assert boxes.shape == (0, 4) and activities.tolist() == []
    everywhere = Scripted({stem: [found((0, 0, W, H), 0.9, 0)] for stem in SCENE})
    for dataset in (data, scene_dataset(tmp_path / "no_activities", activities=False)):
        images = dataset_images(dataset, "val")
        assert ground_truth(images[2], W, H)[0].shape == (0, 4)
        metrics, _ = evaluate({"everywhere": everywhere}, images, 0.1)
        # the whole-image box overlaps every labelled person by IoU 0.22 or more and matches one
        # person an image: one of `a`, the one of `b`, no one of `c`
        assert metrics["everywhere"]["people"] == 3 and metrics["everywhere"]["recall"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def system_run(tmp_path_factory, tiny_inputs, tiny_onnx_classifier):
    out = tmp_path_factory.mktemp("system")
    return out, system_eval_stage(out, tiny_inputs, tiny_onnx_classifier, tiny_onnx_classifier, SYSTEM_PARAMS,
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
    system_eval_stage(tmp_path, tiny_inputs, template, tiny_onnx_classifier,
                      {**SYSTEM_PARAMS, "classifier_of": {"other": "other"}}, recipes, classifier_recipes)
    pairs = json.loads((tmp_path / "pairs.json").read_text())["pairs"]
    assert pairs["other"]["classifier"] == str(twin)
    assert pairs["light"]["classifier"] == pairs["baseline"]["classifier"] == str(tiny_onnx_classifier)
    assert set(json.loads((tmp_path / "m.json").read_text())) == {"baseline", "other", "light"}
    for bad, message in (({"light": "nosuch"}, "classifier_of.light: 'nosuch' is not a recipe of classifier_recipes"),
                         ({"nosuch": "other"}, "classifier_of.nosuch: no YOLO recipe of that name")):
        (tmp_path / "m.json").unlink(missing_ok=True)
        res = system_eval_stage(tmp_path, tiny_inputs, template, tiny_onnx_classifier,
                                {**SYSTEM_PARAMS, "classifier_of": bad}, recipes, classifier_recipes, check=False)
        assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and message in res.stderr, res.stderr
        assert not (tmp_path / "m.json").exists()


def test_system_eval_writes_metrics_sheet_and_pairs(system_run, tiny_inputs):
    import cv2

    out, _ = system_run
    m = json.loads((out / "m.json").read_text())
    assert set(m) == {"baseline", "other"}
    people = labelled_people(tiny_inputs, SYSTEM_PARAMS["max_images"])
    for pair in m.values():
        assert pair["people"] == people > 0  # the label files of the first max_images val images
        assert pair["latency_ms_min"] <= pair["latency_ms_p50"]
    # `other` pairs a copy of the baseline's detector with the same classifier: whatever is not a
    # timing is the baseline's to the last digit
    accuracy = ("people", "recall", "activity_acc_matched", "activity_acc_all")
    assert {k: m["other"][k] for k in accuracy} == {k: m["baseline"][k] for k in accuracy}
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
