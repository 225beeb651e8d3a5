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
fastest by latency; PyTorch rows have none
(posecompress.yolo.benchmarking.runner_throughput says why).
Accuracies are the export and quantize stages' own, at the size they validated at
(`accuracy_imgsz`): a latency does not depend on what the image shows, a pose mAP does.
"""
import argparse
from pathlib import Path

from posecompress.common.checks import (dataset_images, existing_file, image_shape, load_params, named_path, param,
                                        pose_dataset_yaml, run_stage)
from posecompress.common.images import readable_images
from posecompress.common.outputs import write_json
from posecompress.runtime.throughput import cores, throughput_band
from posecompress.runtime.timing import PASSES, STATISTICS, noise_band
from posecompress.yolo.benchmarking import (compare, kind_of, runner, shapes, timed_images, timed_throughput,
                                            write_csv)
from posecompress.yolo.exported import check_pose_export, exported_model

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
    rows, best, best_throughput = compare(table, times, precisions, p["statistic"], throughput)
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
