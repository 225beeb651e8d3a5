"""The report's sections: each takes every metrics file (load_metrics' dict, keyed like
`prune/fast`) and returns its Markdown paragraphs (none when its metrics are absent) and the
metrics files it used. The reference study's figures are quoted beside ours."""
from posecompress.report.markdown import DASH, flatten, mb, ms, num, pct, pick, table, times, under

# The reference study's figures (its write-up in /work/shared/seeds), shown beside ours.
STUDY = {"map50_95": 0.37991, "pruned_map50_95": 0.34384, "finetuned_map50_95": 0.36348,
         "quantized_map50_95": 0.37070}
MAP = ("pose_map50", "pose_map50_95")
MAP_NAMES = dict(zip(MAP, ("mAP50", "mAP50-95")))
PEER = "ultralytics_"  # the benchmark's rows of Ultralytics' own exports (the peer stage)
def study(value: str) -> str:
    return f" *(study: {value})*"


def maps(d: dict) -> str:
    """'mAP50 x%, mAP50-95 y%' of a metrics dict."""
    return f"mAP50 {pct(d.get(MAP[0]))}, mAP50-95 {pct(d.get(MAP[1]))}"


def percent(value) -> str:
    """A figure the stages already give in percent."""
    return DASH if value is None else f"{value:.2f}%"


def baseline(m: dict):
    b = m.get("eval_baseline")
    if not b:
        return [], set()
    arch = f" ({b['architecture']})" if b.get("architecture") else ""
    return [f"The baseline YOLO pose model{arch} scores **{maps(b)}**{study('mAP50 81.80%, mAP50-95 37.99%')}, "
            f"with {num(b.get('params'))} parameters and {num(b.get('gflops'))} GFLOPs per image."], {"eval_baseline"}


def _pruning_sentence(name: str, p: dict, f: dict) -> str:
    if "pruned_params" in p:  # unstructured: the study's accounting
        what = (f"(L1 unstructured) zeroes **{num(p['pruned_params'])} of the {num(p.get('total_params'))} weights "
                f"of the layers it prunes ({pct(p.get('prune_ratio'))})**, that is "
                f"{pct(p.get('model_prune_ratio'))} of all {num(p.get('model_params'))} parameters"
                f"{study('727,606 of 3,263,104 parameters, 22.30%')}")
        kept = (f"; the zeros after fine-tuning: {pct(f.get('model_prune_ratio'))} of all parameters "
                f"({pct(f.get('prune_ratio'))} of the pruned layers'){study('22.30% fell to 22.14%')}"
                if "prune_ratio" in f else "")
    else:  # structured: fewer channels for real
        what = (f"(structured, channels removed) takes the model from {num(p.get('params_before'))} to "
                f"**{num(p.get('params'))} parameters** and from {num(p.get('gflops_before'))} to "
                f"**{num(p.get('gflops'))} GFLOPs** ({pct(p.get('gflops_reduction'), 1)} fewer)")
        for act, label in (("relu", "ReLUs"), ("hardswish", "Hardswish")):
            if p.get(f"{act}_swapped"):
                what += (f" and swaps its {num(p[f'{act}_swapped'])} SiLU activations for {label}, which "
                         f"INT8 convolutions absorb")
        kept = ""
    tuned = (f"; after fine-tuning: **{maps(f)}**{study('80.66% / 36.35%')}{kept}" if f else
             "; not fine-tuned in this run")
    return (f"Recipe `{name}` {what}. Straight after pruning: {maps(p)}{study('79.67% / 34.38%')}{tuned}.")


def layer_table(recipe: str, layers: dict) -> str:
    """Every channel-pruned layer of a recipe, in model order: its channels before and after and
    its share of the model's convolution work before pruning (folded: dozens of rows)."""
    def order(name):
        return [int(part) if part.isdigit() else part for part in name.split(".")]

    rows = [[f"`{name.removesuffix('.conv')}`", num(v["channels_before"]), num(v["channels_after"]),
             pct(1 - v["channels_after"] / v["channels_before"], 0), pct(v["gflops_share"], 1)]
            for name, v in sorted(layers.items(), key=lambda kv: order(kv[0]))]
    cut = sum(1 for v in layers.values() if v["channels_after"] < v["channels_before"])
    return (f"<details><summary>Recipe `{recipe}`, layer by layer: {cut} of {len(layers)} layers lost channels "
            f"(a layer is a convolution and every layer tied to its channels)</summary>\n\n"
            + table(["layer", "channels", "kept", "removed", "share of GFLOPs"], rows) + "\n\n</details>")


def pruning(m: dict):
    pruned, tuned = under(m, "prune"), under(m, "finetune")
    recipes = sorted(set(pruned) | set(tuned))
    if not recipes:
        return [], set()
    body = [_pruning_sentence(r, pruned.get(r, {}), tuned.get(r, {})) for r in recipes]
    rows = []
    for r in recipes:
        p, f = pruned.get(r, {}), tuned.get(r, {})
        rows.append([f"`{r}`", "unstructured" if "pruned_params" in p else "structured",
                     num(pick(f, "params") or p.get("params")), num(pick(f, "gflops") or p.get("gflops")),
                     pct(p.get("model_prune_ratio")), pct(f.get("model_prune_ratio")),
                     pct(p.get(MAP[1])), pct(f.get(MAP[1]))])
    body.append(table(["recipe", "pruning", "params", "GFLOPs", "zeros (pruned)", "zeros (fine-tuned)",
                       "mAP50-95 pruned", "mAP50-95 fine-tuned"], rows))
    body += [layer_table(r, pruned[r]["layers"]) for r in recipes if pruned.get(r, {}).get("layers")]
    return body, {f"prune/{r}" for r in pruned} | {f"finetune/{r}" for r in tuned}


def quantization(m: dict):
    q, exported = under(m, "quantize"), under(m, "export_onnx")
    if not q and not exported:
        return [], set()
    body = []
    if exported:
        body.append("FP32 ONNX exports, outputs compared with PyTorch on val images: " + "; ".join(
            f"`{k}` max |diff| {num(v.get('max_abs_diff'))} (tolerance {num(v.get('tolerance'))}), {maps(v)}"
            for k, v in sorted(exported.items())) + ".")
    for name, v in sorted(q.items()):
        calib = f", calibrated on {num(v['calibration_images'])} images" if v.get("calibration_images") else ""
        run_by = f", run by {v['runtime']}" if v.get("runtime") else ""
        body.append(f"`{name}` INT8 ({v.get('mode')}{calib}{run_by}): **{num(v.get('conv_quantized'))} of "
                    f"{num(v.get('conv_total'))} Conv layers quantized**{study('73 of 159, dynamic UInt8')}"
                    f"{' (the stem, reading the image, kept FP32)' if v.get('float_stem') else ''}, "
                    f"{num(v.get('nodes_kept_float'))} nodes kept in float; **{maps(v)}**"
                    f"{study('79.85% / 37.07% pruned and quantized')}.")
    return body, {f"quantize/{k}" for k in q} | {f"export_onnx/{k}" for k in exported}


def runtime(v: dict) -> str:
    """The runtime a variant ran in, with the precision of its float parts where not f32."""
    # benchmark files from before runtimes were recorded: the kind says it
    name = v.get("runtime") or ("pytorch" if v.get("kind") == "pytorch" else "onnxruntime")
    precision = v.get("float_precision", "f32")
    return name if precision == "f32" else f"{name}, {precision}"


def variant_name(name: str) -> str:
    """A variant's table cell; Ultralytics' own exports marked as such."""
    return f"`{name}` *(Ultralytics)*" if name.startswith(PEER) else f"`{name}`"


def variants_table(bm: dict, rows: dict) -> str:
    """One row per variant, ours and Ultralytics' exports: runtime, accuracy, latency (batch 1, the
    benchmark's threads), speed-ups, throughput with every core where measured, sizes."""
    stat, best = bm.get("statistic", "p50"), bm.get("best_fp32")
    headers = ["variant", "runtime", "mAP50", "mAP50-95", f"latency ({stat})", "p50 / p90", "speed-up vs ONNX FP32",
               f"vs fastest FP32 (`{best}`)" if best else "vs fastest FP32", "vs PyTorch"]
    cells = {k: [variant_name(k), runtime(v), pct(v.get(MAP[0])), pct(v.get(MAP[1])), ms(v.get(f"latency_ms_{stat}")),
                 f"{ms(v.get('latency_ms_p50'))} / {ms(v.get('latency_ms_p90'))}",
                 times(v.get("speedup_vs_onnx_fp32")), times(v.get("speedup_vs_best_fp32")),
                 times(v.get("speedup_vs_pytorch"))] for k, v in rows.items()}
    # benchmark files from before the throughput pass, or with it off, keep the latency table alone
    if any("throughput_fps" in v for v in rows.values()):
        best_t = bm.get("best_fp32_throughput")
        headers += [f"throughput, {bm.get('throughput_threads', DASH)} threads (images/s)", "throughput vs ONNX FP32",
                    f"throughput vs fastest FP32 (`{best_t}`)" if best_t else "throughput vs fastest FP32"]
        for k, v in rows.items():
            fps, streams = v.get("throughput_fps"), v.get("throughput_streams") or 1
            cells[k] += [DASH if fps is None else f"{fps:.1f}" + (f" ({streams} streams)" if streams > 1 else ""),
                         times(v.get("speedup_throughput_vs_onnx_fp32")),
                         times(v.get("speedup_throughput_vs_best_fp32"))]
    headers += ["size", "compressed", "compressed: smaller by"]
    for k, v in rows.items():
        cells[k] += [mb(v.get("size_bytes")), mb(v.get("zip_bytes")), percent(v.get("size_reduction"))]
    return table(headers, list(cells.values()))


def calibration(p: dict) -> str:
    """How a peer export was calibrated, from its metrics file."""
    n, split = p.get("calibration_images"), p.get("calibration_split")
    return "not calibrated" if not n else f"calibrated on {num(n)} {split + ' ' if split else ''}images"


def peers(m: dict, rows: dict):
    """A sentence on the Ultralytics exports among the variants, from their peer metrics files."""
    if not any(k.startswith(PEER) for k in rows):
        return [], set()
    found = {f: m[f"peer/{f}"] for f in (k[len(PEER):] for k in rows if k.startswith(PEER)) if f"peer/{f}" in m}
    versions = sorted({str(p["ultralytics_version"]) for p in found.values() if "ultralytics_version" in p})
    each = [f"`{f}` ({calibration(p)}, box mAP50 {pct(p.get('box_map50'))}, mAP50-95 {pct(p.get('box_map50_95'))})"
            for f, p in found.items()]
    return [f"Rows marked *(Ultralytics)* are Ultralytics' own one-line exports of the same baseline checkpoint "
            f"(the `peer` stage{', Ultralytics ' + ', '.join(versions) if versions else ''}), what a user would "
            f"pick instead of this pipeline{': ' + '; '.join(each) if each else ''}."], {f"peer/{f}" for f in found}


def variants(m: dict):
    bm = m.get("benchmark") or {}
    rows = bm.get("variants") if isinstance(bm.get("variants"), dict) else {}
    if not rows:
        return [], set()
    stat, best = f"latency_ms_{bm.get('statistic', 'p50')}", bm.get("best_fp32")
    fastest = f", `{best}` in this run" if best else ""
    body = [f"Every variant timed in one run, round-robin, batch 1, input {bm.get('imgsz')}, "
            f"{bm.get('threads')} thread(s), {bm.get('images')} val images; speed-ups compare the "
            f"`{stat}` latencies, against ONNX Runtime FP32 (the study's comparison) and against the fastest "
            f"FP32 form of the baseline (PyTorch, ONNX Runtime or OpenVINO{fastest}); OpenVINO runs float parts "
            f"in bf16 on CPUs with AVX512-BF16, shown beside its name. Sizes are the model's files and a ZIP of "
            f"them (deflate level 9). Accuracies are measured at {bm.get('accuracy_imgsz', bm.get('imgsz'))}, "
            f"the size the exports were validated at. Speed-ups moved by up to "
            f"{percent(100 * bm['noise_band']) if 'noise_band' in bm else DASH} between the run's "
            f"{bm.get('noise_passes', DASH)} passes: closer figures are the same speed.",
            variants_table(bm, rows)]
    peer_body, peer_files = peers(m, rows)
    body += peer_body
    recipes = [k[len("int8_"):] for k in rows if k.startswith("int8_") and k != "int8_baseline"]
    ob, pb = rows.get("onnx_baseline", {}), rows.get("pytorch_baseline", {})
    for r in recipes:
        pt, fp, q = rows.get(f"pytorch_{r}", {}), rows.get(f"onnx_{r}", {}), rows[f"int8_{r}"]
        best_fp32 = q.get("speedup_vs_best_fp32")
        vs_best = f", {times(best_fp32)} against the fastest FP32" if best_fp32 is not None else ""
        body.append(
            f"`{r}`: pruned and fine-tuned in PyTorch {ms(pt.get(stat))} against the baseline's "
            f"{ms(pb.get(stat))}{study('67.79 against 67.35 ms')}; INT8 {ms(q.get(stat))} against the "
            f"FP32 ONNX baseline's {ms(ob.get(stat))}, **{times(q.get('speedup_vs_onnx_fp32'))}**{vs_best}"
            f"{study('78.73 against 53.63 ms, slower')}. Compressed / uncompressed size: "
            f"{percent(ob.get('zip_ratio'))} (FP32 baseline), {percent(fp.get('zip_ratio'))} (FP32 pruned), "
            f"{percent(q.get('zip_ratio'))} (INT8){study('85.39%, 71.57%, 61.32%')}; the INT8 file compresses "
            f"to **{percent(q.get('size_reduction'))} less** than the FP32 baseline's{study('80.00% less')}.")
    return body, {"benchmark"} | peer_files


def classifier(m: dict):
    conv, pruned, tuned, bench = (m.get("convert_tf"), under(m, "classifier_prune"),
                                  under(m, "classifier_finetune"), under(m, "classifier_benchmark"))
    if not (conv or pruned or tuned or bench):
        return [], set()
    body = []
    if conv:
        same = [v.get("same_class_percent") for v in (conv.get("parity") or {}).values()]
        body.append(f"The TensorFlow classifier, converted to ONNX and to PyTorch ({num(conv.get('params'))} "
                    f"parameters, {num(conv.get('trainable_params'))} of them trainable), classifies "
                    f"**{percent(conv.get('accuracy'))}** of the val poses correctly{study('61.24%')}; the three "
                    f"agree on {percent(min(same)) if same else DASH} of the predicted classes.")
    recipes = sorted(set(pruned) | set(tuned) | set(bench))
    rows = []
    for r in recipes:
        p, f, b = pruned.get(r, {}), tuned.get(r, {}), bench.get(r, {})
        rows.append([f"`{r}`", f"{num(p.get('pruned_params'))} of {num(p.get('total_params'))}",
                     pct(p.get("prune_ratio")), percent(p.get("accuracy")), percent(f.get("accuracy")),
                     pct(f.get("prune_ratio")), num(f.get("params")), times(b.get("speedup"))])
    if rows:
        quote = study("2,185,495 of 5,784,828 weights, 37.78%; 61.24% → 50.37% → 61.61%, ratio unchanged")
        body.append(f"Pruned, then fine-tuned with the masks kept{quote}:")
        body.append(table(["recipe", "weights pruned", "ratio", "accuracy pruned", "accuracy fine-tuned",
                           "ratio fine-tuned", "params", "speed-up (batch 1)"], rows))
    used = {"convert_tf"} if conv else set()
    return body, used | {f"classifier_prune/{r}" for r in pruned} | {f"classifier_finetune/{r}" for r in tuned} \
        | {f"classifier_benchmark/{r}" for r in bench}


def system(m: dict):
    s = m.get("system_eval")
    pairs = {k: v for k, v in (s or {}).items() if isinstance(v, dict)}
    if not pairs:
        return [], set()
    rows = [[f"`{k}`", pct(v.get("recall")), pct(v.get("activity_acc_all")), pct(v.get("activity_acc_matched")),
             ms(v.get("latency_ms_mean")), times(v.get("speedup"))] for k, v in pairs.items()]
    body = [table(["pair", "people found", "activity accuracy (all people)", "(matched people)",
                   "latency / image", "speed-up"], rows)]
    if not any("activity_acc_all" in v for v in pairs.values()):
        body.append("\nActivity accuracy not measured: the val images have no activity files "
                    "(`activities/` beside `labels/`, one class index per person).")
    return body, {"system_eval"}


def _architecture_rows(name: str, m: dict) -> list:
    """One row per INT8 variant of a run: its baseline, GFLOPs cut, accuracies, speed-up, size."""
    b, bench = m.get("eval_baseline") or {}, (m.get("benchmark") or {}).get("variants") or {}
    rows = []
    for r in ["baseline", *sorted(under(m, "finetune"))]:
        q, v = m.get(f"quantize/{r}") or {}, bench.get(f"int8_{r}") or {}
        tuned = m.get(f"finetune/{r}") or {}
        cut = (m.get(f"prune/{r}") or {}).get("gflops_reduction", 0.0 if r == "baseline" else None)
        rows.append([f"`{name}`", f"`{r}`", pct(b.get(MAP[0])), pct(b.get(MAP[1])), pct(cut, 1),
                     pct(tuned.get(MAP[1])), pct(q.get(MAP[0])), pct(q.get(MAP[1])),
                     times(v.get("speedup_vs_onnx_fp32")), mb(v.get("zip_bytes")), percent(v.get("size_reduction"))])
    return rows


def architectures(m: dict, others: dict):
    """This run beside the recorded runs of other baselines (results/<name>/metrics), INT8 variant
    by variant; nothing when none is recorded."""
    if not others:
        return [], set()
    this = (m.get("eval_baseline") or {}).get("architecture", "this run")
    rows = [row for name, mm in [(f"{this} (this run)", m), *sorted(others.items())]
            for row in _architecture_rows(name, mm)]
    return ["The same recipes on other baselines, each run recorded under `results/<name>/` "
            "(`dvc exp run -S baseline.model=...`, see docs/architectures.md). Speed-ups are against the "
            "baseline's own FP32 ONNX file, in that run's benchmark.",
            table(["baseline", "INT8 of", "baseline mAP50", "mAP50-95", "GFLOPs cut", "fine-tuned mAP50-95",
                   "INT8 mAP50", "INT8 mAP50-95", "INT8 speed-up", "INT8 compressed", "smaller by"], rows)], set()


def other(m: dict, used: set) -> str:
    """Every metrics file no section used, flattened, so that no figure goes unreported."""
    rows = [[f"`{k}`", key, num(value) if isinstance(value, (int, float)) else str(value)]
            for k in sorted(set(m) - used) for key, value in flatten(m[k]).items()
            if not isinstance(value, list)]
    return table(["metrics file", "key", "value"], rows) if rows else ""


def study_comparison(m: dict) -> dict:
    """Pose mAP50-95 at each step of the study's method, the study's and ours (the `reference`
    recipe, else the first one; None where this run has no such step)."""
    recipes = sorted(under(m, "prune")) or sorted(under(m, "finetune"))
    r = "reference" if "reference" in recipes else (recipes[0] if recipes else None)
    ours = [m.get(key, {}).get(MAP[1]) for key in ("eval_baseline", f"prune/{r}", f"finetune/{r}", f"quantize/{r}")]
    return {"study": [STUDY["map50_95"], STUDY["pruned_map50_95"], STUDY["finetuned_map50_95"],
                      STUDY["quantized_map50_95"]],
            f"this run ({r or 'baseline only'})": ours}
