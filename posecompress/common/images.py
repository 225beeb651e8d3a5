"""Images turned into YOLO input tensors exactly as Ultralytics' validator prepares them.

The validator's path (ultralytics.data.base.BaseDataset.load_image, LetterBox in val mode,
Format, DetectionValidator.preprocess): read BGR, resize so the long side is the long side of
the target shape (aspect kept, bilinear), pad to (h, w) centred with grey 114, BGR -> RGB,
HWC -> CHW, float32 / 255. Calibration, the export check and the benchmark all use it, so the
INT8 scales are calibrated on the same value distribution the validator feeds the model.
"""
import math
from pathlib import Path

import cv2
import numpy as np

import posecompress  # noqa: F401  (Ultralytics offline before it is imported)
from posecompress.common.checks import InputError


def read_bgr(path) -> np.ndarray:
    """An image file as a BGR uint8 array; InputError when it cannot be decoded."""
    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise InputError(f"image {path}: unreadable")
    return im


def validator_tensor(path, shape) -> np.ndarray:
    """A 1x3xHxW float32 tensor of one image file, as the validator makes it for shape (h, w)."""
    from ultralytics.data.augment import LetterBox

    im = read_bgr(path)
    h0, w0 = im.shape[:2]
    r = max(shape) / max(h0, w0)
    if r != 1:
        size = (min(math.ceil(w0 * r), max(shape)), min(math.ceil(h0 * r), max(shape)))
        im = cv2.resize(im, size, interpolation=cv2.INTER_LINEAR)
    im = LetterBox(new_shape=tuple(shape), scaleup=False)(image=im)
    chw = np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))
    return (chw.astype(np.float32) / 255.0)[None]


def readable_images(files, what: str) -> list:
    """The files, after checking there is at least one and that every one decodes."""
    files = [Path(f) for f in files]
    if not files:
        raise InputError(f"{what}: no images")
    for f in files:
        read_bgr(f)
    return files


def spread(files: list, n: int) -> list:
    """n files spread evenly over a sorted list (all of them when n >= len), deterministic."""
    if n >= len(files):
        return list(files)
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]
