"""What a checked pose dataset's splits hold, and the one mix of files that is refused.

Ultralytics reads an image with no label file as background: with some of a split's label files
missing (a partial `dvc pull`, a misnamed folder), every person in those images counts as a false
positive and pose mAP drops, with nothing said (10 of the demo's 100 val label files gone: mAP50
0.866 -> 0.800). So a split where some images have a label file and others have none is refused,
unless the dataset YAML says background images are meant (BACKGROUND_KEY), and the census of each
split (images, people, empty label files, no label file) is recorded beside the metrics, so a
change in what was measured shows in `dvc metrics diff` and in the verdict.

system_eval reads one more file per val image: its people's activities (`activities/` beside
`labels/`). A split with them for some images only is refused the same way; with none, system_eval
measures detection alone.
"""
from pathlib import Path

import yaml

from posecompress.common.checks import InputError, dataset_images
from posecompress.common.pose_data import label_file

BACKGROUND_KEY = "background_images"


def activity_file(image) -> Path:
    """Where an image's activity labels are: activities/ beside labels/, one class index per person,
    in the label file's order."""
    image = Path(image)
    return image.parent.parent.parent / "activities" / image.parent.name / f"{image.stem}.txt"


def split_census(images: list, activities: bool = False) -> dict:
    """Images, people (label lines), images with an empty label file and images with none; with
    `activities`, the images with an activity file too."""
    people = empty = missing = acts = 0
    for image in images:
        label = label_file(image)
        acts += activities and activity_file(image).is_file()
        if not label.is_file():
            missing += 1
            continue
        rows = sum(1 for line in label.read_text(encoding="utf-8-sig").splitlines() if line.split())
        people += rows
        empty += rows == 0
    census = {"images": len(images), "people": people, "empty_label_files": empty, "no_label_file": missing}
    return {**census, "activity_files": acts} if activities else census


def dataset_census(dataset_yaml) -> dict:
    """{train: census, val: census (with activity_files)} of a dataset YAML that passed
    pose_dataset_yaml; InputError for a split that mixes labelled and unlabelled images without
    `background_images: true`, or val images with activity files for some images only."""
    spec = yaml.safe_load(Path(dataset_yaml).read_text()) or {}
    background = spec.get(BACKGROUND_KEY, False)
    if not isinstance(background, bool):
        raise InputError(f"dataset {dataset_yaml}: {BACKGROUND_KEY} is {background!r}, expected true or false")
    census = {}
    for split in ("train", "val"):
        images = dataset_images(dataset_yaml, split)
        c = census[split] = split_census(images, activities=split == "val")
        if c["no_label_file"] and not background:
            first = next(label_file(i) for i in images if not label_file(i).is_file())
            raise InputError(
                f"dataset {dataset_yaml}: {c['no_label_file']} of the {c['images']} {split} images have no label "
                f"file (first: {first}); Ultralytics would count each as background and every person in it as a "
                f"false positive. Restore them (dvc pull), or add '{BACKGROUND_KEY}: true' to the dataset YAML "
                f"if those images show no one")
    val = census["val"]
    if 0 < val["activity_files"] < val["images"]:
        first = next(activity_file(i) for i in dataset_images(dataset_yaml, "val") if not activity_file(i).is_file())
        raise InputError(f"dataset {dataset_yaml}: {val['images'] - val['activity_files']} of the {val['images']} "
                         f"val images have no activity file (first: {first}); system_eval needs one for every "
                         f"val image, or none (it then measures detection alone)")
    return census
