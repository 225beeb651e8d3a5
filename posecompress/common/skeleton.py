"""The COCO-17 skeleton as the pipeline uses it: the limbs drawn on sample sheets, and the
classifier's input feature made from a person's keypoints (the demo's activity data is made
with the same function, so features from labels and from a detector agree)."""
import numpy as np

LIMBS = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16)]


def normalise_keypoints(xy: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The classifier's input: (17, 2) coordinates and (17,) visibility in [0, 1] -> (51,).

    Coordinates are centred on the extent of the labelled keypoints and divided by its
    larger side, so the feature is the same whether keypoints come from labels or from a
    detector; unlabelled keypoints are zeros.
    """
    labelled = visible > 0
    out = np.zeros((17, 3), dtype=np.float32)
    if labelled.any():
        pts = xy[labelled]
        lo, hi = pts.min(0), pts.max(0)
        scale = max(float((hi - lo).max()), 1e-6)
        out[labelled, :2] = (pts - (lo + hi) / 2) / scale
    out[:, 2] = visible
    return out.reshape(-1)
