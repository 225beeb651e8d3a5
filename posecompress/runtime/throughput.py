"""Throughput: images a second with every core busy, the figure OpenVINO's `benchmark_app`
reports, beside the 1-thread batch-1 latency of timing.py.

These sessions differ from sessions.py's on purpose: they share the cores among parallel
inferences instead of finishing one image as soon as possible.
- OpenVINO: the THROUGHPUT performance hint, which chooses how many streams (inferences running at
  once, each on its share of the threads) and infer requests keep the CPU busy; images go through
  an AsyncInferQueue of that many requests, as benchmark_app feeds them.
- onnxruntime: one session whose intra-op pool holds every thread, images in turn, batch 1:
  onnxruntime has no streams of its own.
A runner takes a list of preprocessed 1x3xHxW float32 tensors and returns when all are done;
only that call is timed. Models are timed block by block, in turns, the order rotated each pass
(as timing.py does image by image), so load from other work on the host falls on all alike; the
passes also give the throughput speed-ups' noise band.
"""
import os
import time

import numpy as np

from posecompress.runtime.sessions import compiled_ir, onnx_session, session_runner
from posecompress.runtime.timing import PASSES


def cores() -> int:
    """The cores this process may run on: a cpuset (a container, `taskset`) can hold fewer than the
    machine has, and os.cpu_count() counts the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def openvino_throughput(path, threads: int, shape, what: str = "OpenVINO model"):
    """A throughput runner of an IR folder or .xml file on `threads` threads, compiled for `shape`;
    its `streams` and `requests` say what the THROUGHPUT hint chose."""
    import openvino as ov

    compiled = compiled_ir(path, {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": threads}, shape, what)
    requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, requests)

    def run(tensors):
        for x in tensors:
            # shared, not copied: the tensors are not written to, and a copy would be timed too
            queue.start_async({0: x}, share_inputs=True)
        queue.wait_all()
    run.streams, run.requests = int(compiled.get_property("NUM_STREAMS")), requests
    return run


def onnx_throughput(path, threads: int, what: str = "ONNX model"):
    """A throughput runner of an .onnx file on onnxruntime, `threads` intra-op threads."""
    one = session_runner(onnx_session(path, threads, what))

    def run(tensors):
        for x in tensors:
            one(x)
    run.streams, run.requests = 1, 1
    return run


def timed_passes(runners: dict, tensors: list, warmup: int = 0, passes: int = PASSES, desc=None) -> dict:
    """{name: seconds of each pass} of every runner over the tensors, cut into `passes` consecutive
    blocks (fewer when there are fewer tensors), each block through every runner in turn, the order
    rotated by one each pass. `warmup` untimed calls per infer request come first."""
    from tqdm import tqdm

    names = list(runners)
    for name in names:
        runners[name]([tensors[0]] * (warmup * runners[name].requests))
    blocks = np.array_split(np.arange(len(tensors)), min(passes, len(tensors)))
    seconds = {n: [] for n in names}
    with tqdm(total=len(blocks) * len(names), desc=desc, unit="block", disable=desc is None) as bar:
        for i, block in enumerate(blocks):
            batch = [tensors[j] for j in block]
            k = i % len(names)
            for name in names[k:] + names[:k]:
                t0 = time.perf_counter()
                runners[name](batch)
                seconds[name].append(time.perf_counter() - t0)
                bar.update()
    return seconds


def throughput_band(seconds: dict, reference: str) -> float:
    """How far the throughput speed-ups against `reference` move between the passes, relative to
    the whole run's (timing.noise_band's measure); 0 with a single pass."""
    ref = np.asarray(seconds[reference], float)
    spreads = []
    for name, s in seconds.items():
        s = np.asarray(s, float)
        if name == reference or len(s) < 2:
            continue
        ratios = ref / s  # every runner ran the same block in a pass: a ratio of seconds is one of images/s
        spreads.append(float((ratios.max() - ratios.min()) / (ref.sum() / s.sum())))
    return max(spreads, default=0.0)
