"""The demo generator: YOLO pose labels true to what is drawn, an activity set, determinism."""
import numpy as np
import yaml

from demo.generate import generate, render_image
from demo.skeleton import ACTIVITIES, FLIP_IDX, activity_prototypes, normalise_keypoints


def read_labels(path):
    rows = [list(map(float, line.split())) for line in path.read_text().splitlines()]
    return np.array(rows).reshape(-1, 5 + 51)


def test_pose_labels_follow_yolo_pose_format(tiny_data):
    spec = yaml.safe_load((tiny_data / "pose" / "pose.yaml").read_text())
    assert spec["kpt_shape"] == [17, 3] and spec["flip_idx"] == FLIP_IDX
    labels = sorted((tiny_data / "pose" / "labels" / "train").glob("*.txt"))
    assert len(labels) == 12
    counts = []
    for path in labels:
        rows = read_labels(path)
        acts = (tiny_data / "pose" / "activities" / "train" / path.name).read_text().split()
        assert len(acts) == len(rows) and all(0 <= int(a) < len(ACTIVITIES) for a in acts)
        counts.append(len(rows))
        for row in rows:
            assert row[0] == 0 and np.all((row[1:5] >= 0) & (row[1:5] <= 1))
            kpt = row[5:].reshape(17, 3)
            # a keypoint outside the image is unlabelled and carries zero coordinates
            assert np.all(kpt[kpt[:, 2] == 0, :2] == 0)
            assert np.all((kpt[:, :2] >= 0) & (kpt[:, :2] <= 1))
    assert max(counts) <= 4 and sum(counts) >= 12


def test_visibility_flags_cover_outside_occluded_and_visible():
    # people overlap in a few images only (about 1% of keypoints are hidden): 60 images show all three
    rng = np.random.default_rng(0)
    prototypes = activity_prototypes(0)
    flags = {float(v) for _ in range(60) for _, kpv, _ in render_image(rng, prototypes, 320, 240)[1]
             for v in kpv[:, 2]}
    assert flags == {0.0, 1.0, 2.0}


def test_activity_dataset_is_normalised_and_labelled(tiny_data):
    import pandas as pd

    train = pd.read_csv(tiny_data / "activity" / "train.csv")
    assert train.shape == (400, 52)
    assert set(train["label"]) <= set(range(20))
    assert (tiny_data / "activity" / "classes.txt").read_text().split("\n")[:20] == ACTIVITIES
    xy = train.drop(columns="label").to_numpy().reshape(-1, 17, 3)[:, :, :2]
    assert np.abs(xy).max() <= 0.5 + 1e-4  # centred on the keypoints' extent, divided by its larger side


def test_generator_is_deterministic(tmp_path):
    generate(tmp_path / "a", 2, 1, 10, 5, seed=7)
    generate(tmp_path / "b", 2, 1, 10, 5, seed=7)
    for f in (tmp_path / "a").rglob("*"):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f


def test_normalise_keypoints_ignores_unlabelled_points():
    xy = np.arange(34, dtype=float).reshape(17, 2)
    vis = np.ones(17)
    vis[3] = 0
    feats = normalise_keypoints(xy, vis).reshape(17, 3)
    assert np.all(feats[3] == 0) and feats[:, :2].max() == 0.5 and feats[:, :2].min() == -0.5
