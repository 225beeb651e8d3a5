"""Run a detector + classifier pair on your own images, offline.

    python -m tools.predict IMAGE_OR_FOLDER [--recipe NAME] [--out runs/predict]

Prints one line per person (box, confidence, activity and its probability) and writes the
images annotated with boxes, skeletons and activities. `--recipe` picks a pair that the
`system_eval` stage recorded in its pairs file: `baseline` (default) or a compression recipe.
"""
import argparse
import json
from pathlib import Path

import cv2

from posecompress import PROJECT_ROOT
from posecompress.common.checks import InputError, existing_file, run_stage
from posecompress.system.pipeline import PosePipeline, class_names, draw_people, image_files, read_image


def load_pair(pairs_file, recipe: str) -> dict:
    """The detector, classifier and settings of one pair from system_eval's pairs file."""
    if not Path(pairs_file).exists():
        raise InputError(f"pairs file {pairs_file}: not found; run the pipeline first (`make repro`, or "
                         f"`dvc repro system_eval`), which writes it")
    path = existing_file(pairs_file, "pairs file")
    pairs = json.loads(Path(path).read_text())
    if recipe not in pairs["pairs"]:
        raise InputError(f"--recipe {recipe}: no such pair; known: {', '.join(pairs['pairs'])}")
    at_root = lambda rel: str(PROJECT_ROOT / rel)  # noqa: E731  (recorded relative to the project root)
    pair = pairs["pairs"][recipe]
    return {"detector": at_root(pair["detector"]), "classifier": at_root(pair["classifier"]),
            "settings": pairs["settings"], "classes": at_root(pairs["classes"])}


def describe(image: Path, people: list, names: list) -> list:
    """One printable line per person."""
    if not people:
        return [f"{image}: no people found"]
    return [f"{image}: person {i + 1}: box [{' '.join(f'{v:.0f}' for v in p.box)}] conf {p.confidence:.2f} "
            f"activity {names[p.activity]} ({p.probability:.2f})" for i, p in enumerate(people)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="an image or a folder of images")
    ap.add_argument("--recipe", default="baseline")
    ap.add_argument("--out", default="runs/predict", help="folder for annotated images")
    ap.add_argument("--pairs", default=str(PROJECT_ROOT / "outputs/system_eval/pairs.json"),
                    help="written by the system_eval stage")
    a = ap.parse_args()
    files = image_files(a.source)
    images = [(f, read_image(f)) for f in files]  # every file checked before any model runs
    pair = load_pair(a.pairs, a.recipe)
    s = pair["settings"]
    names = class_names(pair["classes"])
    pipeline = PosePipeline(pair["detector"], pair["classifier"], s["conf"], s["kpt_seen"], s["kpt_occluded"],
                            s["threads"])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for path, img in images:
        people = pipeline(img)
        print("\n".join(describe(path, people, names)))
        cv2.imwrite(str(out / f"{path.stem}.jpg"), draw_people(img, people, names))
    print(f"annotated images in {out}/")


if __name__ == "__main__":
    run_stage(main)
