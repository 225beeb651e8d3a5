"""Train the demo's two baseline models on the generated demo data, on the CPU.

    python -m demo.train_baselines yolo --data data --epochs 50        # ~50 min on 2 cores
    python -m demo.train_baselines classifier --data data --epochs 30  # ~2 min

`yolo`: the yolov8n-pose architecture from Ultralytics' own model YAML, trained from scratch;
the best checkpoint is copied to <data>/models/yolo_pose.pt.
`classifier`: a Keras MLP over the 51 normalised keypoint values (about 5.8 M parameters, as
the reference study's), saved as <data>/models/activity_classifier.keras (Keras 3's
SavedModel export stores every weight twice, which would double the bundled remote).
"""
import argparse
import shutil
import tempfile
from pathlib import Path

import stages  # noqa: F401  (Ultralytics offline before it is imported)


def train_yolo(data: Path, epochs: int, imgsz: int = 320, batch: int = 16, seed: int = 0,
               weights=None) -> Path:
    """Train yolov8n-pose on <data>/pose/pose.yaml, from its YAML or, to train longer, from an
    earlier checkpoint (`weights`); return the copied best checkpoint."""
    from ultralytics import YOLO

    out = data / "models" / "yolo_pose.pt"
    with tempfile.TemporaryDirectory() as runs:
        model = YOLO(str(weights) if weights else "yolov8n-pose.yaml", task="pose")
        model.train(data=str((data / "pose" / "pose.yaml").resolve()), epochs=epochs, imgsz=imgsz,
                    batch=batch, workers=2, device="cpu", seed=seed, deterministic=True, amp=False,
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
    ap.add_argument("--weights", type=Path, help="yolo: continue from this checkpoint")
    a = ap.parse_args(argv)
    if a.what == "yolo":
        out = train_yolo(a.data, a.epochs or 50, a.imgsz, weights=a.weights)
    else:
        out = train_classifier(a.data, a.epochs or 30)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
