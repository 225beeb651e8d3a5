"""Timing, sizing and comparing a baseline's variants: PyTorch, FP32 ONNX, INT8 and Ultralytics'
own exports, each in its runtime (runtime/runtimes.py), latency in turns image by image and
throughput block by block.
"""
import io
import json
import zipfile
from pathlib import Path

from posecompress.common.checks import InputError
from posecompress.common.images import validator_tensor
from posecompress.common.outputs import atomic_path
from posecompress.runtime.formats import model_files
from posecompress.runtime.runtimes import runtime_of
from posecompress.runtime.throughput import timed_passes
from posecompress.runtime.timing import latency, round_robin
from posecompress.yolo.exported import image_input

CSV_COLUMNS = ("variant", "kind", "latency_ms_p50", "latency_ms_min", "latency_ms_mean", "latency_ms_p90",
               "speedup_vs_onnx_fp32", "speedup_vs_best_fp32", "speedup_vs_pytorch", "pose_map50",
               "pose_map50_95", "zip_bytes")
FP32_KINDS = ("pytorch", "onnx_fp32", "openvino_fp32")  # the baseline's FP32 forms speedup_vs_best_fp32 compares to
THROUGHPUT_COLUMNS = ("throughput_fps", "speedup_throughput_vs_onnx_fp32", "speedup_throughput_vs_best_fp32")
POOL = 16  # distinct images the throughput pass cycles: prepared before timing, 3.7 MB each at 480x640


def kind_of(model, precision: str) -> str:
    """'onnx_int8', 'openvino_fp32', ...: the runtime and the precision a variant runs in."""
    return f"{runtime_of(model).kind}_{precision}"


def shapes(table, imgsz) -> tuple:
    """(h, w) the variants are timed at, and (h, w) their accuracy was measured at (the export's).

    InputError when a static-shape ONNX file cannot run at `imgsz` (OpenVINO models are compiled
    for it), or the models were exported at different sizes (their accuracies would not compare)."""
    timed = tuple(imgsz)
    inputs = {model: image_input(model) for _, kind, model, _ in table if kind != "pytorch"}
    for model, (_, shape, dynamic) in inputs.items():
        if not dynamic and shape != timed and not runtime_of(model).reshapes:
            raise InputError(f"model {model}: static input shape {list(shape)} cannot run at benchmark.imgsz "
                             f"{list(timed)}; export with export_onnx.dynamic: true, or set benchmark.imgsz "
                             f"to export_onnx.imgsz")
    exported = {shape for _, shape, _ in inputs.values()}
    if len(exported) != 1:
        raise InputError(f"models exported at different sizes {sorted(exported)}: re-run export_onnx and peer")
    return timed, exported.pop()


def runner(kind: str, path, threads: int, shape):
    """A function running one forward pass on a 1x3xHxW float32 array of (h, w) `shape`; its
    `float_precision` says what float parts run in."""
    if kind == "pytorch":
        import torch

        from posecompress.yolo.models import load_pose_model

        torch.set_num_threads(threads)
        net = load_pose_model(path).model.float().eval().fuse()  # fused, as Ultralytics predicts

        def run(x):
            with torch.inference_mode():
                return net(torch.from_numpy(x))
        run.float_precision = "f32"
        return run
    return runtime_of(path).runner(path, threads, (1, 3, *shape), "model")


def runner_throughput(kind: str, path, threads: int, shape):
    """A throughput runner (posecompress/runtime/throughput.py) of a variant on `threads` threads;
    None for PyTorch.

    PyTorch's OpenMP pool waits at its barriers by spinning: with other work on one of this 2-core
    host's cores, 2 threads ran yolov8n-pose at 480x640 in 2.4-3.2 s a call against 0.10-0.11 s at
    1 thread. OMP_WAIT_POLICY=PASSIVE avoids it (0.11 s at 2 threads), but only when set before torch
    loads, and the latency pass before it has loaded torch (the PyTorch variants). Neither benchmark_app nor Ultralytics'
    CPU tables give a PyTorch throughput to set one beside."""
    if kind == "pytorch":
        return None
    return runtime_of(path).throughput_runner(path, threads, (1, 3, *shape), "model")


def timed_throughput(table, files, shape, n: int, threads: int, warmup: int) -> tuple:
    """{name: {"throughput_fps", "throughput_streams", "throughput_requests"}} of every variant but
    PyTorch's over n val images (up to POOL of them, cycled), in turns, block by block; and
    {name: seconds of each pass} (timed_passes)."""
    runners = {name: r for name, kind, model, _ in table if (r := runner_throughput(kind, model, threads, shape))}
    pool = [validator_tensor(files[i], shape) for i in range(min(n, len(files), POOL))]
    seconds = timed_passes(runners, [pool[i % len(pool)] for i in range(n)], warmup, desc="throughput")
    return {name: {"throughput_fps": n / sum(seconds[name]), "throughput_streams": r.streams,
                   "throughput_requests": r.requests} for name, r in runners.items()}, seconds


def timed_images(runners: dict, files, shape, n: int, warmup: int) -> dict:
    """Milliseconds per forward pass of every runner over n val images (files cycled), in turns;
    every runner gets the same preprocessed tensor."""
    tensors = (validator_tensor(files[i % len(files)], shape) for i in range(n))
    return round_robin(runners, tensors, validator_tensor(files[0], shape), warmup, desc="benchmark", total=n)


def zip_sizes(files: dict) -> dict:
    """Bytes of {name: bytes} and of a ZIP archive holding them (deflate, level 9), and their ratio in %."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in files.items():
            z.writestr(name, data)
    size, zipped = sum(map(len, files.values())), len(buf.getvalue())
    return {"size_bytes": size, "zip_bytes": zipped, "zip_ratio": 100.0 * zipped / size}


def file_sizes(path) -> dict:
    """Sizes of an exported model, all its files (zip_sizes)."""
    return zip_sizes({f.name: f.read_bytes() for f in model_files(path)})


def weight_sizes(path) -> dict:
    """Sizes of a PyTorch checkpoint's weights in float32, as the benchmark runs them (zip_sizes of
    their torch.save): Ultralytics saves its checkpoints in half precision, the pipeline its
    fine-tuned ones in float32, so the files themselves do not compare."""
    import torch

    from posecompress.yolo.models import load_pose_model

    buf = io.BytesIO()
    torch.save(load_pose_model(path).model.float().state_dict(), buf)
    return zip_sizes({"weights.pt": buf.getvalue()})


def compare(table: list, times: dict, precisions: dict, statistic: str, throughput=None) -> tuple:
    """Per variant: latency, speed-ups against onnx_baseline, the fastest FP32 form of the baseline
    and pytorch_baseline, sizes, accuracy, and throughput where timed_throughput measured one (its
    speed-ups against onnx_baseline and the FP32 form with the most images a second); the name of
    the fastest FP32 variant by latency and by throughput (None without throughput)."""
    rows = {}
    for name, kind, model, acc in table:
        m = json.loads(Path(acc).read_text())
        rows[name] = {"kind": kind, "runtime": "pytorch" if kind == "pytorch" else runtime_of(model).name,
                      "float_precision": precisions[name], **latency(times[name]),
                      **(weight_sizes(model) if kind == "pytorch" else file_sizes(model)),
                      "size_of": "float32 weights" if kind == "pytorch" else "file",
                      "pose_map50": m["pose_map50"], "pose_map50_95": m["pose_map50_95"]}
    key = f"latency_ms_{statistic}"
    fp32 = [n for n, r in rows.items()
            if r["kind"] in FP32_KINDS and (n.endswith("_baseline") or n.startswith("ultralytics_"))]
    best = min(fp32, key=lambda n: rows[n][key])
    onnx_ref, pt_ref, zip_ref = rows["onnx_baseline"][key], rows["pytorch_baseline"][key], \
        rows["onnx_baseline"]["zip_bytes"]
    for r in rows.values():
        r["speedup_vs_onnx_fp32"] = onnx_ref / r[key]
        r["speedup_vs_best_fp32"] = rows[best][key] / r[key]
        r["speedup_vs_pytorch"] = pt_ref / r[key]
        r["size_reduction"] = 100.0 * (1 - r["zip_bytes"] / zip_ref)
    if not throughput:
        return rows, best, None
    for name, t in throughput.items():
        rows[name].update(t)
    best_throughput = max((n for n in fp32 if n in throughput), key=lambda n: rows[n]["throughput_fps"])
    onnx_fps, best_fps = rows["onnx_baseline"]["throughput_fps"], rows[best_throughput]["throughput_fps"]
    for name in throughput:
        rows[name]["speedup_throughput_vs_onnx_fp32"] = rows[name]["throughput_fps"] / onnx_fps
        rows[name]["speedup_throughput_vs_best_fp32"] = rows[name]["throughput_fps"] / best_fps
    return rows, best, best_throughput


def write_csv(path, rows: dict) -> None:
    """One line per variant, for `dvc plots` (accuracy against latency); throughput columns where
    it was measured, empty in PyTorch's rows."""
    columns = CSV_COLUMNS + tuple(c for c in THROUGHPUT_COLUMNS if any(c in r for r in rows.values()))
    lines = [",".join(columns)]
    for name, r in rows.items():
        lines.append(",".join(name if c == "variant" else r[c] if c == "kind" else f"{r[c]:.6g}" if c in r else ""
                              for c in columns))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
