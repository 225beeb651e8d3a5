"""Articulated stick people: COCO-17 keypoints from joint angles, and the 20 MPII activities.

A pose is a vector of joint angles (see POSE_PARAMS). Each activity has a prototype pose,
drawn once from a seeded generator; a person of that activity is the prototype plus
Gaussian noise, so activities are learnable from keypoints but overlap.
"""
import numpy as np

from posecompress.common.skeleton import LIMBS, normalise_keypoints  # noqa: F401  (the pipeline's own)

KEYPOINT_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]
FLIP_IDX = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
# limbs drawn as thick segments (index pairs into KEYPOINT_NAMES)

ACTIVITIES = [
    "sports", "miscellaneous", "home activities", "occupation", "fishing and hunting",
    "home repair", "conditioning exercise", "lawn and garden", "religious activities",
    "music playing", "inactivity quiet/light", "water activities", "running",
    "winter activities", "walking", "dancing", "bicycling", "transportation", "self care",
    "volunteer activities",
]

# (name, low, high) of each joint angle in radians; 0 points a limb straight down.
POSE_PARAMS = [
    ("lean", -0.5, 0.5), ("head_tilt", -0.4, 0.4), ("facing", -1.0, 1.0),
    ("l_upper_arm", -2.8, 1.0), ("l_forearm", -2.2, 0.2),
    ("r_upper_arm", -1.0, 2.8), ("r_forearm", -0.2, 2.2),
    ("l_thigh", -1.6, 0.5), ("l_shin", -0.2, 1.8),
    ("r_thigh", -0.5, 1.6), ("r_shin", -1.8, 0.2),
]
SEGMENT = {"torso": 0.30, "upper_arm": 0.17, "forearm": 0.15, "thigh": 0.24, "shin": 0.23,
           "neck": 0.09, "head": 0.065, "shoulder": 0.10, "hip": 0.065}


def activity_prototypes(seed: int = 0) -> np.ndarray:
    """One prototype pose per activity, shape (20, len(POSE_PARAMS))."""
    rng = np.random.default_rng(seed)
    low = np.array([p[1] for p in POSE_PARAMS])
    high = np.array([p[2] for p in POSE_PARAMS])
    return low + rng.random((len(ACTIVITIES), len(POSE_PARAMS))) * (high - low)


def sample_pose(prototypes: np.ndarray, activity: int, rng, noise: float) -> np.ndarray:
    """A pose of the given activity: its prototype plus Gaussian noise of `noise` radians."""
    return prototypes[activity] + rng.normal(0.0, noise, prototypes.shape[1])


def _direction(angle: float) -> np.ndarray:
    return np.array([np.sin(angle), np.cos(angle)])


def keypoints_from_pose(pose: np.ndarray, height: float, hip: np.ndarray) -> np.ndarray:
    """Image coordinates (17, 2) of a person `height` pixels tall with hip centre at `hip`."""
    p = dict(zip([n for n, _, _ in POSE_PARAMS], pose))
    s = {k: v * height for k, v in SEGMENT.items()}
    lean, facing = p["lean"], float(np.clip(p["facing"], -1, 1))
    frontal, side = np.cos(facing * np.pi / 2), np.sin(facing * np.pi / 2)
    up = -_direction(lean)
    across = np.array([np.cos(lean), -np.sin(lean)])
    neck = hip + s["torso"] * up
    kp = np.zeros((17, 2))
    width = max(abs(frontal), 0.3)
    kp[5], kp[6] = neck + s["shoulder"] * width * across, neck - s["shoulder"] * width * across
    kp[11], kp[12] = hip + s["hip"] * width * across, hip - s["hip"] * width * across
    for shoulder, elbow, wrist, upper, fore in ((5, 7, 9, "l_upper_arm", "l_forearm"),
                                                (6, 8, 10, "r_upper_arm", "r_forearm")):
        kp[elbow] = kp[shoulder] + s["upper_arm"] * _direction(lean + p[upper])
        kp[wrist] = kp[elbow] + s["forearm"] * _direction(lean + p[upper] + p[fore])
    for hip_i, knee, ankle, thigh, shin in ((11, 13, 15, "l_thigh", "l_shin"),
                                            (12, 14, 16, "r_thigh", "r_shin")):
        kp[knee] = kp[hip_i] + s["thigh"] * _direction(p[thigh])
        kp[ankle] = kp[knee] + s["shin"] * _direction(p[thigh] + p[shin])
    head = neck - s["neck"] * _direction(lean + p["head_tilt"])
    r = s["head"]
    kp[0] = head + np.array([0.6 * r * side, 0.25 * r])
    kp[1] = head + np.array([0.45 * r * frontal + 0.5 * r * side, -0.2 * r])
    kp[2] = head + np.array([-0.45 * r * frontal + 0.5 * r * side, -0.2 * r])
    kp[3] = head + np.array([0.95 * r * frontal - 0.3 * r * side, 0.0])
    kp[4] = head + np.array([-0.95 * r * frontal - 0.3 * r * side, 0.0])
    return kp


def head_centre(keypoints: np.ndarray) -> np.ndarray:
    """Centre of the head circle: midway between the ears."""
    return (keypoints[3] + keypoints[4]) / 2
