"""Stage classifier_benchmark: the original and a compressed activity classifier, timed as ONNX.

    python -m stages.classifier_benchmark --recipe reference --original outputs/classifier/convert_tf/classifier.onnx \
        --model outputs/classifier/finetune/reference/model.onnx --data data/activity \
        --metrics metrics/classifier_benchmark/reference.json

Both run in ONNX Runtime on the CPU at batch 1, one val sample per call, timed round-robin
(original, compressed, original, ...) so that other work on the machine falls on both alike.
Reports latency_ms_mean/p50/p90/min; `speedup` is the ratio of the minimums (the least
disturbed timing), `speedup_p50` the ratio of the medians, `noise_band` how far `speedup`
moves between the run's passes (stages/timing.py). Also each model's val accuracy
as ONNX, which checks the export.
"""
import argparse

import numpy as np

from posecompress.common.checks import existing_file, load_params, param, run_stage
from posecompress.classifier.models import accuracy, load_activity
from posecompress.common.outputs import write_json
from posecompress.runtime.sessions import onnx_session, session_runner
from posecompress.runtime.timing import latency, noise_band, round_robin


def read_params(path) -> dict:
    """The classifier_benchmark section of params.yaml, checked."""
    s = load_params(path, "classifier_benchmark")
    return {"rounds": param(s, "rounds", int, "classifier_benchmark.rounds", 1, 100000),
            "warmup": param(s, "warmup", int, "classifier_benchmark.warmup", 0, 10000),
            "threads": param(s, "threads", int, "classifier_benchmark.threads", 1, 256)}


def run_all(sess, x: np.ndarray) -> np.ndarray:
    """Outputs for the rows of x, one call per row batch of 256."""
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 256]})[0] for i in range(0, len(x), 256)])


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
    sessions = {k: onnx_session(existing_file(path, "ONNX model"), p["threads"])
                for k, path in (("original", a.original), ("compressed", a.model))}
    acc = {k: accuracy(data["y_val"], run_all(s, data["x_val"]).argmax(1)) for k, s in sessions.items()}
    runners = {k: session_runner(s) for k, s in sessions.items()}
    samples = (data["x_val"][r % len(data["x_val"])][None] for r in range(p["rounds"]))  # batch 1
    times = round_robin(runners, samples, data["x_val"][:1], p["warmup"])
    stats = {k: {**latency(v), "accuracy": acc[k]} for k, v in times.items()}
    metrics = {**stats, "speedup": stats["original"]["latency_ms_min"] / stats["compressed"]["latency_ms_min"],
               "speedup_p50": stats["original"]["latency_ms_p50"] / stats["compressed"]["latency_ms_p50"],
               "noise_band": noise_band(times, "original")}
    write_json(a.metrics, metrics)
    print(f"classifier_benchmark[{a.recipe}]: batch 1, min {stats['original']['latency_ms_min']:.3f} ms -> "
          f"{stats['compressed']['latency_ms_min']:.3f} ms, speed-up {metrics['speedup']:.2f}x (min) / "
          f"{metrics['speedup_p50']:.2f}x (median); ONNX accuracy {acc['original']:.2f}% -> {acc['compressed']:.2f}%")


if __name__ == "__main__":
    run_stage(main)
