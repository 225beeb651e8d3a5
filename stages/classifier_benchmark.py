"""Stage classifier_benchmark: the original and a compressed activity classifier, timed as ONNX.

    python -m stages.classifier_benchmark --recipe reference --original outputs/classifier/convert_tf/classifier.onnx \
        --model outputs/classifier/finetune/reference/model.onnx --data data/activity \
        --metrics metrics/classifier_benchmark/reference.json

Both run in ONNX Runtime on the CPU at batch 1, one val sample per call, timed round-robin
(original, compressed, original, ...) so that other work on the machine falls on both alike.
Reports min, median and p90 latency in ms; `speedup` is the ratio of the minimums (the least
disturbed timing), `speedup_median` the ratio of the medians, `noise_band` how far `speedup`
moves between the run's passes (stages/timing.py). Also each model's val accuracy
as ONNX, which checks the export.
"""
import argparse
import time

import numpy as np

from stages.checks import InputError, existing_file, load_params, param, run_stage
from stages.classifier_models import accuracy, load_activity
from stages.outputs import write_json
from stages.timing import noise_band


def read_params(path) -> dict:
    """The classifier_benchmark section of params.yaml, checked."""
    s = load_params(path, "classifier_benchmark")
    return {"rounds": param(s, "rounds", int, "classifier_benchmark.rounds", 1, 100000),
            "warmup": param(s, "warmup", int, "classifier_benchmark.warmup", 0, 10000),
            "threads": param(s, "threads", int, "classifier_benchmark.threads", 1, 256)}


def session(path, threads: int):
    """An ONNX Runtime CPU session with a fixed thread count."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a file that is not ONNX
        raise InputError(
            f"ONNX model {path}: not loadable by ONNX Runtime ({e.__class__.__name__})") from None


def run_all(sess, x: np.ndarray) -> np.ndarray:
    """Outputs for the rows of x, one call per row batch of 256."""
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 256]})[0] for i in range(0, len(x), 256)])


def time_round_robin(sessions: dict, x: np.ndarray, rounds: int, warmup: int) -> dict:
    """Per session: batch-1 latencies in ms, timed in turns."""
    times = {k: [] for k in sessions}
    for r in range(warmup + rounds):
        sample = x[r % len(x)][None]
        for k, s in sessions.items():
            name = s.get_inputs()[0].name
            t0 = time.perf_counter()
            s.run(None, {name: sample})
            if r >= warmup:
                times[k].append((time.perf_counter() - t0) * 1000)
    return {k: np.asarray(v) for k, v in times.items()}


def summary(ms: np.ndarray) -> dict:
    """min, median and p90 of latencies in ms."""
    return {"min_ms": float(ms.min()), "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--original", required=True, help="original classifier ONNX (convert_tf)")
    ap.add_argument("--model", required=True, help="compressed classifier ONNX (classifier_finetune)")
    ap.add_argument("--data", required=True, help="activity dataset folder")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    data = load_activity(a.data)
    sessions = {"original": session(existing_file(a.original, "ONNX model"), p["threads"]),
                "compressed": session(existing_file(a.model, "ONNX model"), p["threads"])}
    acc = {k: accuracy(data["y_val"], run_all(s, data["x_val"]).argmax(1)) for k, s in sessions.items()}
    times = time_round_robin(sessions, data["x_val"], p["rounds"], p["warmup"])
    stats = {k: {**summary(v), "accuracy": acc[k]} for k, v in times.items()}
    metrics = {**stats, "speedup": stats["original"]["min_ms"] / stats["compressed"]["min_ms"],
               "speedup_median": stats["original"]["median_ms"] / stats["compressed"]["median_ms"],
               "noise_band": noise_band(times, "original")}
    write_json(a.metrics, metrics)
    print(f"classifier_benchmark[{a.recipe}]: batch 1, min {stats['original']['min_ms']:.3f} ms -> "
          f"{stats['compressed']['min_ms']:.3f} ms, speed-up {metrics['speedup']:.2f}x (min) / "
          f"{metrics['speedup_median']:.2f}x (median); ONNX accuracy {acc['original']:.2f}% -> {acc['compressed']:.2f}%")


if __name__ == "__main__":
    run_stage(main)
