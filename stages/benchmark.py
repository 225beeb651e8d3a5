"""Stage benchmark: every YOLO pose variant timed in one interleaved run, with its size and accuracy.

    python -m stages.benchmark --baseline data/models/yolo_pose.pt \
        --finetuned 'outputs/yolo/finetune/{name}/model.pt' --onnx 'outputs/yolo/onnx/{name}.onnx' \
        --int8 'outputs/yolo/quantize/{name}' --export-metrics 'metrics/export_onnx/{name}.json' \
        --quantize-metrics 'metrics/quantize/{name}.json' --peer 'outputs/yolo/peer/{name}' \
        --peer-metrics 'metrics/peer/{name}.json' --data data/pose/pose.yaml \
        --metrics metrics/benchmark.json --plot plots/benchmark/variants.csv

Variants: pytorch_<m>, onnx_<m> (FP32) and int8_<m> (onnxruntime or OpenVINO, as the quantize
mode chose) for m = baseline and every recipe in params.yaml's `recipes`, and ultralytics_<f> for
every Ultralytics peer export f in peers.formats. All run at benchmark.imgsz (the study's 480x640;
ONNX files exported with a static shape must have that one; OpenVINO models are compiled for it)
on benchmark.images val images (cycled when fewer), batch 1, benchmark.threads threads, after
benchmark.warmup untimed calls. Every speed-up is given against onnx_baseline (onnxruntime FP32,
the study's comparison) and against the fastest FP32 form of the baseline measured
(`speedup_vs_best_fp32`: PyTorch, onnxruntime or OpenVINO, whichever ran fastest; OpenVINO runs
float in bf16 on CPUs with AVX512-BF16, recorded as `float_precision`).
Rounds are round-robin (each image through every variant, order rotated each round), so load
from other work on the host falls on all variants alike. Only the forward pass is timed; every
variant gets the same preprocessed tensor. Speed-ups are ratios of benchmark.statistic;
`noise_band` is how far they move between the run's passes (stages/timing.py).
Throughput, a second pass over benchmark.throughput_images images (0: none), uses every core
(benchmark.throughput_threads, 0: all this process may run on): OpenVINO models compiled with the
THROUGHPUT hint and fed asynchronously (the streams and infer requests it chose are recorded),
onnxruntime sessions with that many intra-op threads (posecompress/runtime/throughput.py). Its
speed-ups (`speedup_throughput_vs_*`) are ratios of images/second, against onnx_baseline and the
fastest FP32 form of the baseline by throughput (`best_fp32_throughput`), which may not be the
fastest by latency; PyTorch rows have none (runner_throughput says why).
Accuracies are the export and quantize stages' own, at the size they validated at
(`accuracy_imgsz`): a latency does not depend on what the image shows, a pose mAP does.
"""
import argparse
import io
import zipfile
from pathlib import Path

from posecompress.common.checks import (InputError, dataset_images, existing_file, image_shape, load_params, named_path, param,
                           pose_dataset_yaml, run_stage)
from posecompress.common.images import readable_images, validator_tensor
from posecompress.common.outputs import atomic_path, write_json
from posecompress.runtime.sessions import model_runner
from posecompress.runtime.throughput import cores, throughput_band, throughput_runner, timed_passes
from posecompress.runtime.timing import PASSES, STATISTICS, latency, noise_band, round_robin
from posecompress.yolo.exported import exported_model, image_input, is_openvino, model_files, runtime_of
from posecompress.yolo.models import check_pose_export

CSV_COLUMNS = ("variant", "kind", "latency_ms_p50", "latency_ms_min", "latency_ms_mean", "latency_ms_p90",
               "speedup_vs_onnx_fp32", "speedup_vs_best_fp32", "speedup_vs_pytorch", "pose_map50",
               "pose_map50_95", "zip_bytes")
FP32_KINDS = ("pytorch", "onnx_fp32", "openvino_fp32")  # the baseline's FP32 forms speedup_vs_best_fp32 compares to
THROUGHPUT_COLUMNS = ("throughput_fps", "speedup_throughput_vs_onnx_fp32", "speedup_throughput_vs_best_fp32")
POOL = 16  # distinct images the throughput pass cycles: prepared before timing, 3.7 MB each at 480x640


def read_params(path) -> dict:
    """The benchmark section of params.yaml, checked, and the recipe names."""
    s = load_params(path, "benchmark")
    p = {"imgsz": image_shape(s, "imgsz", "benchmark.imgsz"),
         "images": param(s, "images", int, "benchmark.images", 1, 100000),
         "warmup": param(s, "warmup", int, "benchmark.warmup", 0, 10000),
         "threads": param(s, "threads", int, "benchmark.threads", 1, 256),
         "statistic": param(s, "statistic", str, "benchmark.statistic", choices=tuple(STATISTICS)),
         "throughput_images": param(s, "throughput_images", int, "benchmark.throughput_images", 0, 100000),
         "throughput_threads": param(s, "throughput_threads", int, "benchmark.throughput_threads", 0, 1024)}
    p["recipes"] = list(load_params(path, "recipes"))  # `recipes: {}`: the baseline's variants only
    p["peers"] = param(load_params(path, "peers"), "formats", list, "peers.formats")
    return p


def kind_of(model, precision: str) -> str:
    """'onnx_int8', 'openvino_fp32', ...: the runtime and the precision a variant runs in."""
    return f"{'openvino' if runtime_of(model) == 'openvino' else 'onnx'}_{precision}"


def variants(a, recipes, peers) -> list:
    """(name, kind, model, accuracy metrics file) of every variant; files checked to exist, exported
    models to be pose models (check_pose_export).

    A PyTorch variant's accuracy is its FP32 ONNX export's: the same weights at the same input
    shape, outputs matched within export_onnx.tolerance.
    """
    out = []
    for m in ["baseline", *recipes]:
        pt = Path(a.baseline) if m == "baseline" else named_path(a.finetuned, m, "--finetuned")
        exported = named_path(a.export_metrics, m, "--export-metrics")
        int8 = exported_model(named_path(a.int8, m, "--int8"), f"model (int8_{m})")
        out += [(f"pytorch_{m}", "pytorch", pt, exported),
                (f"onnx_{m}", "onnx_fp32", named_path(a.onnx, m, "--onnx"), exported),
                (f"int8_{m}", kind_of(int8, "int8"), int8, named_path(a.quantize_metrics, m, "--quantize-metrics"))]
    for f in peers:
        model = exported_model(named_path(a.peer, f, "--peer"), f"model (ultralytics_{f})")
        out.append((f"ultralytics_{f}", kind_of(model, f.rsplit("_", 1)[-1]), model,
                    named_path(a.peer_metrics, f, "--peer-metrics")))
    for name, kind, model, acc in out:
        existing_file(model, f"model ({name})")
        existing_file(acc, f"metrics ({name})")
        if kind != "pytorch":
            check_pose_export(model)
    return out


def shapes(table, imgsz) -> tuple:
    """(h, w) the variants are timed at, and (h, w) their accuracy was measured at (the export's).

    InputError when a static-shape ONNX file cannot run at `imgsz` (OpenVINO models are compiled
    for it), or the models were exported at different sizes (their accuracies would not compare)."""
    timed = tuple(imgsz)
    inputs = {model: image_input(model) for _, kind, model, _ in table if kind != "pytorch"}
    for model, (_, shape, dynamic) in inputs.items():
        if not dynamic and shape != timed and not is_openvino(model):
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
    else:
        run = model_runner(path, threads, (1, 3, *shape), "model")
    if not hasattr(run, "float_precision"):
        run.float_precision = "f32"
    return run


def runner_throughput(kind: str, path, threads: int, shape):
    """A throughput runner (posecompress/runtime/throughput.py) of a variant on `threads` threads;
    None for PyTorch.

    PyTorch's OpenMP pool waits at its barriers by spinning: with other work on one of this 2-core
    host's cores, 2 threads ran yolov8n-pose at 480x640 in 2.4-3.2 s a call against 0.10-0.11 s at
    1 thread. OMP_WAIT_POLICY=PASSIVE avoids it (0.11 s at 2 threads), but only when set before torch
    loads, and importing posecompress loads it (Ultralytics). Neither benchmark_app nor Ultralytics'
    CPU tables give a PyTorch throughput to set one beside."""
    if kind == "pytorch":
        return None
    return throughput_runner(path, threads, (1, 3, *shape), "model")


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


def report(table: list, times: dict, precisions: dict, statistic: str, throughput=None) -> tuple:
    """Per variant: latency, speed-ups against onnx_baseline, the fastest FP32 form of the baseline
    and pytorch_baseline, sizes, accuracy, and throughput where timed_throughput measured one (its
    speed-ups against onnx_baseline and the FP32 form with the most images a second); the name of
    the fastest FP32 variant by latency and by throughput (None without throughput)."""
    import json

    rows = {}
    for name, kind, model, acc in table:
        m = json.loads(Path(acc).read_text())
        rows[name] = {"kind": kind, "runtime": "pytorch" if kind == "pytorch" else runtime_of(model),
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, what in [("--baseline", "baseline PyTorch checkpoint"),
                       ("--finetuned", "a recipe's fine-tuned checkpoint, {name} standing for the recipe"),
                       ("--onnx", "a model's FP32 ONNX file, {name}: baseline or a recipe"),
                       ("--int8", "a model's INT8 model (quantize's folder), {name}: baseline or a recipe"),
                       ("--peer", "an Ultralytics peer export (peer's folder), {name}: a peers.formats entry"),
                       ("--peer-metrics", "peer's metrics of a format ({name})"),
                       ("--export-metrics", "export_onnx's metrics of a model ({name})"),
                       ("--quantize-metrics", "quantize's metrics of a model ({name})"),
                       ("--data", "pose dataset YAML (val images)"), ("--metrics", "metrics JSON to write"),
                       ("--plot", "CSV to write")]:
        ap.add_argument(flag, required=True, help=what)
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    p = read_params(a.params)
    table = variants(a, p["recipes"], p["peers"])
    files = readable_images(dataset_images(pose_dataset_yaml(a.data), "val"), f"dataset {a.data} val")
    shape, accuracy_shape = shapes(table, p["imgsz"])
    runners = {name: runner(kind, model, p["threads"], shape) for name, kind, model, _ in table}
    times = timed_images(runners, files, shape, p["images"], p["warmup"])
    precisions = {n: r.float_precision for n, r in runners.items()}
    del runners  # their memory goes before the throughput pass builds sessions of its own
    top = {"images": p["images"], "imgsz": list(shape), "accuracy_imgsz": list(accuracy_shape),
           "threads": p["threads"], "statistic": p["statistic"], "throughput_images": p["throughput_images"]}
    throughput = None
    if p["throughput_images"]:
        threads = p["throughput_threads"] or cores()
        throughput, seconds = timed_throughput(table, files, shape, p["throughput_images"], threads, p["warmup"])
        top.update(throughput_threads=threads, noise_band_throughput=throughput_band(seconds, "onnx_baseline"),
                   throughput_passes=len(seconds["onnx_baseline"]))
    rows, best, best_throughput = report(table, times, precisions, p["statistic"], throughput)
    band = noise_band(times, "onnx_baseline", STATISTICS[p["statistic"]])
    if best_throughput:
        top["best_fp32_throughput"] = best_throughput
    write_json(a.metrics, {**top, "best_fp32": best, "noise_band": band, "noise_passes": PASSES, "variants": rows})
    write_csv(a.plot, rows)
    for name, r in rows.items():
        fps = (f"{r['throughput_fps']:7.1f} images/s (x{r['speedup_throughput_vs_onnx_fp32']:.2f} vs onnx_baseline, "
               f"{r['throughput_streams']} stream(s)), " if "throughput_fps" in r else "")
        print(f"{name:>22}: p50 {r['latency_ms_p50']:7.2f} ms, min {r['latency_ms_min']:7.2f} ms, "
              f"x{r['speedup_vs_onnx_fp32']:.2f} vs onnx_baseline, x{r['speedup_vs_best_fp32']:.2f} vs {best} "
              f"({p['statistic']}), {fps}"
              f"zip {r['zip_bytes'] / 1e6:.2f} MB ({r['size_reduction']:+.1f}% smaller), "
              f"pose mAP50-95 {r['pose_map50_95']:.4f}")
    print(f"speed-ups moved by up to {100 * band:.1f}% between the run's {PASSES} passes (noise_band)")
    if throughput:
        print(f"throughput on {top['throughput_threads']} threads: speed-ups moved by up to "
              f"{100 * top['noise_band_throughput']:.1f}% between its {top['throughput_passes']} passes "
              f"(noise_band_throughput)")


if __name__ == "__main__":
    run_stage(main)
