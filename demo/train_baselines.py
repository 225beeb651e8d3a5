"""Train the demo's two baseline models on the generated demo data, on the CPU.

    python -m demo.train_baselines yolo --data data --epochs 50        # ~50 min on 2 cores
    python -m demo.train_baselines yolo --weights yolo11n-pose.pt --epochs 30 \
        --out data/models/yolo11n_pose.pt                               # ~25 min, transfer learning
    python -m demo.train_baselines classifier --data data --epochs 30  # ~2 min

`yolo`: the yolov8n-pose architecture from Ultralytics' own model YAML, trained from scratch,
or any YOLO pose checkpoint given as `--weights` trained further (the demo's yolo11n-pose starts
from Ultralytics' COCO-pretrained weights: see docs/demo-inputs.md); the best checkpoint
is copied to `--out` (default <data>/models/yolo_pose.pt).
`classifier`: a Keras MLP over the 51 normalised keypoint values (about 5.8 M parameters, as
the reference study's), saved as <data>/models/activity_classifier.keras (Keras 3's
SavedModel export stores every weight twice, which would double the bundled remote).
"""
import argparse
import shutil
import tempfile
from pathlib import Path

import posecompress  # noqa: F401  (Ultralytics offline before it is imported)
from posecompress.common.checks import resolve_device


def train_yolo(data: Path, epochs: int, imgsz: int = 320, batch: int = 16, seed: int = 0,
               weights=None, out=None, arch: str = "yolov8n-pose", device: str = "cpu") -> Path:
    """Train a YOLO pose model on <data>/pose/pose.yaml, from the YAML of Ultralytics' `arch`
    (yolov8n-pose, yolo11n-pose, yolo26n-pose, ...) or from a checkpoint (`weights`:
    an earlier run to train longer, or pretrained weights to transfer); return the copied best
    checkpoint."""
    from ultralytics import YOLO

    out = Path(out) if out else data / "models" / "yolo_pose.pt"
    with tempfile.TemporaryDirectory() as runs:
        model = YOLO(str(weights) if weights else f"{arch}.yaml", task="pose")
        model.train(data=str((data / "pose" / "pose.yaml").resolve()), epochs=epochs, imgsz=imgsz,
                    batch=batch, workers=2, device=device, seed=seed, deterministic=True, amp=False,
                    # no left-right flips: the demo people wear their left limbs darker than their
                    # right ones, and a mirrored image would teach the opposite
                    fliplr=0.0, plots=False, project=runs, name="baseline", exist_ok=True, verbose=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(runs) / "baseline" / "weights" / "best.pt", out)
    return out


def build_classifier(n_inputs: int, n_classes: int, widths=(2048, 2048, 704), dropout: float = 0.5):
    """The demo classifier: Dense-BatchNorm-ReLU-Dropout blocks and a softmax output."""
    import keras

    layers = [keras.Input((n_inputs,), name="keypoints")]
    for w in widths:
        layers += [keras.layers.Dense(w), keras.layers.BatchNormalization(),
                   keras.layers.Activation("relu"), keras.layers.Dropout(dropout)]
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="activity"))
    return keras.Sequential(layers)


def train_classifier(data: Path, epochs: int, seed: int = 0, widths=(2048, 2048, 704)) -> Path:
    """Fit the classifier on <data>/activity and save it as a .keras file."""
    import keras
    import pandas as pd

    keras.utils.set_random_seed(seed)
    train = pd.read_csv(data / "activity" / "train.csv")
    val = pd.read_csv(data / "activity" / "val.csv")
    classes = (data / "activity" / "classes.txt").read_text().split("\n")
    n_classes = len([c for c in classes if c])
    x, y = train.drop(columns="label").to_numpy("float32"), train["label"].to_numpy()
    xv, yv = val.drop(columns="label").to_numpy("float32"), val["label"].to_numpy()
    model = build_classifier(x.shape[1], n_classes, widths)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, validation_data=(xv, yv), verbose=2)
    print(f"classifier: {model.count_params():,} parameters, "
          f"val accuracy {model.evaluate(xv, yv, verbose=0)[1]:.4f}")
    out = data / "models" / "activity_classifier.keras"
    out.parent.mkdir(parents=True, exist_ok=True)
    # saved from an uncompiled copy, so the file holds no optimizer state
    inference = build_classifier(x.shape[1], n_classes, widths)
    inference.set_weights(model.get_weights())
    inference.save(str(out))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["yolo", "classifier"])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--epochs", type=int, default=None, help="yolo: 60, classifier: 30")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--weights", type=Path, help="yolo: start from this checkpoint")
    ap.add_argument("--out", type=Path, help="yolo: where the best checkpoint goes")
    ap.add_argument("--arch", default="yolov8n-pose", help="yolo: Ultralytics model YAML, without --weights")
    ap.add_argument("--device", default="auto", help="yolo: auto (a CUDA GPU when present), cpu, cuda:N")
    a = ap.parse_args(argv)
    if a.what == "yolo":
        out = train_yolo(a.data, a.epochs or 50, a.imgsz, weights=a.weights, out=a.out, arch=a.arch,
                         device=resolve_device(a.device, "--device"))
    else:
        out = train_classifier(a.data, a.epochs or 30)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
