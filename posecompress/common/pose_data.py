"""The files of a pose dataset split, checked before any work: every image decodes to its last byte
and every label line is one Ultralytics reads as written.

Ultralytics' loader (ultralytics.data.utils.verify_image_label) drops a corrupt image or label
file with a warning, removes repeated lines and rewrites a JPEG that lacks its end marker in
place; the metrics then move and nothing says why. Here each such file is a problem for the
caller to refuse. An image without a label file stays legal: Ultralytics reads it as a
background image.
"""
import math
from pathlib import Path

MIN_SIDE = 10  # Ultralytics refuses images smaller than this a side
TOLERANCE = 0.01  # Ultralytics lets normalised coordinates overshoot [0, 1] by this much


def split_images(entry) -> list:
    """Image files of a split entry, sorted, as Ultralytics finds them: under a folder (recursively),
    or listed in a text file, one a line ("./" meaning the text file's folder)."""
    from ultralytics.data.utils import IMG_FORMATS

    entry = Path(entry)
    if entry.is_file():
        lines = [x.strip() for x in entry.read_text(encoding="utf-8-sig").splitlines() if x.strip()]
        files = [entry.parent / x[2:] if x.startswith("./") else Path(x) for x in lines]
    else:
        files = [f for f in entry.rglob("*") if f.is_file() and not f.name.startswith(".")]
    return sorted(f for f in files if f.suffix[1:].lower() in IMG_FORMATS)


def image_problem(path) -> str | None:
    """Why an image file cannot be used, or None: it must decode to the end (OpenCV, which Ultralytics
    reads with, returns a truncated JPEG's missing part as grey), in a format Ultralytics reads, at
    least MIN_SIDE pixels a side."""
    from PIL import Image
    from ultralytics.data.utils import IMG_FORMATS

    try:
        with Image.open(path) as im:
            (w, h), kind = im.size, im.format or "unknown"
            im.draft(im.mode, (w // 8, h // 8))  # JPEG: scaled down as it decodes, every byte still read
            im.load()
    except Exception as e:  # PIL raises many kinds for a damaged or missing file
        return f"unreadable image ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})"[:200]
    if min(w, h) < MIN_SIDE:
        return f"image of {w}x{h} pixels, under {MIN_SIDE} a side"
    if kind.lower() not in IMG_FORMATS | {"jpeg2000"}:
        return f"{kind} image, not a format Ultralytics reads"
    return None


def label_problem(path, classes: int, kpt_shape) -> str | None:
    """Why a YOLO pose label file is wrong, or None: every line must hold a class index below
    `classes`, a box (cx, cy, w, h) and kpt_shape[0] keypoints of kpt_shape[1] values (x, y
    [, visibility]), coordinates normalised to [0, 1], visibilities not negative, no line repeated."""
    nk, nd = kpt_shape
    fields = 5 + nk * nd
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return f"unreadable label file ({e.__class__.__name__})"
    seen = {}
    for i, line in enumerate(lines, 1):
        row = line.split()
        if not row:
            continue
        if len(row) != fields:
            return f"line {i}: {len(row)} fields, expected {fields} (class, box, {nk} keypoints x {nd})"
        try:
            v = [float(x) for x in row]
        except ValueError:
            return f"line {i}: not all numbers"
        if not all(math.isfinite(x) for x in v):
            return f"line {i}: not all finite numbers"
        if not (v[0].is_integer() and 0 <= v[0] < classes):
            return f"line {i}: class {row[0]} is not an index of the dataset's {classes} names"
        points = v[1:5] + [x for k in range(nk) for x in v[5 + k * nd:7 + k * nd]]
        if not all(-TOLERANCE <= x <= 1 + TOLERANCE for x in points):
            return f"line {i}: coordinate {next(x for x in points if not -TOLERANCE <= x <= 1 + TOLERANCE)} " \
                   f"outside [0, 1]"
        if nd == 3 and min(v[7::3]) < 0:
            return f"line {i}: negative keypoint visibility"
        if tuple(v) in seen:
            return f"line {i} repeats line {seen[tuple(v)]}"
        seen[tuple(v)] = i
    return None


def label_file(image) -> Path:
    """Where Ultralytics looks for an image's label file: the last images/ folder of its path
    becomes labels/, the suffix .txt."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([image])[0])


def split_problems(images: list, classes: int, kpt_shape) -> tuple:
    """([(file, why), ...] for every bad image and label file of a split, in file order; the number of
    images that have a label file)."""
    problems, labelled = [], 0
    for image, label in zip(images, map(label_file, images)):
        why = image_problem(image)
        if why:
            problems.append((image, why))
        if label.is_file():
            labelled += 1
            why = label_problem(label, classes, kpt_shape)
            if why:
                problems.append((label, why))
    return problems, labelled
