"""The report's targets (params.yaml's `targets`) and its variants table with Ultralytics' exports
beside ours, from benchmark dicts built here: figures asserted are computed from these inputs."""
import json

import pytest

from posecompress.report import sections, targets
from posecompress.common.checks import InputError
from posecompress.report.markdown import ms, pct, times
from tests.conftest import ROOT

SPEC = targets.read_targets(ROOT / "params.yaml")
TARGETS = SPEC["baselines"]["default"]


def row(latency: float, map50: float, map50_95: float, runtime="onnxruntime", precision="f32") -> dict:
    """A benchmark variant row with a latency (every statistic alike) and pose accuracies."""
    return {"kind": "x", "runtime": runtime, "float_precision": precision, "latency_ms_min": latency,
            "latency_ms_p50": latency + 1, "latency_ms_p90": latency + 2, "pose_map50": map50,
            "pose_map50_95": map50_95, "size_bytes": 1000, "zip_bytes": 900, "zip_ratio": 90.0,
            "size_reduction": 0.0}


def benchmark(rows: dict, best="onnx_baseline") -> dict:
    """A benchmark.json dict timing `rows` by their min latency; speed-ups computed as the stage does."""
    for r in rows.values():
        r["speedup_vs_onnx_fp32"] = rows["onnx_baseline"]["latency_ms_min"] / r["latency_ms_min"]
        r["speedup_vs_best_fp32"] = rows[best]["latency_ms_min"] / r["latency_ms_min"]
    return {"images": 10, "imgsz": [480, 640], "threads": 1, "statistic": "min", "best_fp32": best,
            "noise_band": 0.02, "noise_passes": 3, "variants": rows}


@pytest.fixture
def rows() -> dict:
    """The baseline's forms, the fast recipe's INT8 and the three peers; every target met."""
    return {"pytorch_baseline": row(90.0, 0.86, 0.40, "pytorch"),
            "onnx_baseline": row(60.0, 0.86, 0.40),
            "int8_baseline": row(20.0, 0.85, 0.39),
            "int8_fast": row(6.5, 0.85, 0.395),
            "ultralytics_onnx_int8": row(30.0, 0.80, 0.35),
            "ultralytics_openvino_fp32": row(24.0, 0.86, 0.40, "openvino", "bf16"),
            "ultralytics_openvino_int8": row(25.0, 0.85, 0.39, "openvino", "bf16")}


def by_target(bm: dict) -> dict:
    """target_results keyed by their TARGETS row's (variant, figure, against)."""
    return {(t["variant"], t["figure"], "best_fp32" if t["fastest"] else t["against"]): t
            for t in targets.target_results(bm, TARGETS, SPEC["accuracy_floor"])}


def test_targets_met_are_computed_from_the_latencies_and_accuracies(rows):
    got = by_target(benchmark(rows, best="ultralytics_openvino_fp32"))
    assert len(got) == len(TARGETS) and all(t["met"] and t["gap"] == 0 for t in got.values())
    peer = got[("int8_baseline", "speed", "ultralytics_openvino_int8")]
    assert peer["value"] == pytest.approx(25.0 / 20.0)
    fastest = got[("int8_fast", "speed", "best_fp32")]
    assert fastest["against"] == "ultralytics_openvino_fp32" and fastest["value"] == pytest.approx(24.0 / 6.5)
    # 0.85 against the peer's 0.85 + 0.005 would be a float hair beyond 0.005; it is within
    rows["ultralytics_openvino_int8"]["pose_map50"] = 0.855
    assert by_target(benchmark(rows))[("int8_baseline", "pose_map50", "ultralytics_openvino_int8")]["met"]


def test_missed_targets_say_by_how_much(rows):
    rows["int8_fast"] = row(60.0 / 5.61, 0.83, 0.385)  # 5.61x the ONNX baseline; 3 and 1.5 points lost
    rows["int8_baseline"] = row(26.0, 0.85, 0.39)  # slower than the OpenVINO INT8 peer's 25 ms
    bm = benchmark(rows)
    got = by_target(bm)
    onnx = got[("int8_fast", "speed", "onnx_baseline")]
    assert not onnx["met"] and onnx["gap"] == pytest.approx(6 - 5.61)
    assert got[("int8_fast", "pose_map50_95", "onnx_baseline")]["gap"] == pytest.approx(0.40 - 0.385 - 0.01)
    assert got[("int8_fast", "pose_map50", "onnx_baseline")]["gap"] == pytest.approx(0.86 - 0.83 - 0.02)
    assert got[("int8_baseline", "speed", "ultralytics_openvino_int8")]["gap"] == pytest.approx(1 - 25.0 / 26.0)
    assert got[("int8_baseline", "pose_map50", "ultralytics_openvino_int8")]["met"]

    body, used = targets.targets({"benchmark": bm}, SPEC)
    text = "\n".join(body)
    assert used == {"benchmark"}
    line = next(ln for ln in text.splitlines() if "at least 6× as fast as `onnx_baseline`" in ln)
    assert f"{times(60.0 / rows['int8_fast']['latency_ms_min'])} " in line
    assert f"**missed**: {100 * (6 - 5.61) / 6:.1f}% short of 6×" in line
    line = next(ln for ln in text.splitlines() if "pose mAP50-95 within 1.00 points of `onnx_baseline`" in ln)
    assert f"{pct(0.385)} against {pct(0.40)}" in line and "**missed**: 0.50 points beyond the 1.00 points" in line
    line = next(ln for ln in text.splitlines() if "at least as fast as `ultralytics_openvino_int8`" in ln)
    assert f"{ms(26.0)} against {ms(25.0)}, min" in line and f"{100 * (1 - 25.0 / 26.0):.1f}% short of 1×" in line


def test_targets_without_their_variants_are_left_out(rows):
    peers = [k for k in rows if k.startswith(sections.PEER)]
    no_peers = benchmark({k: v for k, v in rows.items() if k not in peers})  # peers.formats: []
    assert {t["variant"] for t in targets.target_results(no_peers, TARGETS, 0.05)} == {"int8_fast"}
    assert "ultralytics" not in "\n".join(targets.targets({"benchmark": no_peers}, SPEC)[0])
    no_recipes = benchmark({k: v for k, v in rows.items() if k != "int8_fast"})  # recipes: {}
    assert {t["variant"] for t in targets.target_results(no_recipes, TARGETS, 0.05)} == {"int8_baseline"}
    neither = benchmark({k: v for k, v in rows.items() if k != "int8_fast" and k not in peers})
    assert targets.targets({"benchmark": neither}, SPEC) == ([], set())
    assert targets.targets({}, SPEC) == ([], set())


def test_variants_table_shows_the_peers_and_the_fastest_fp32(rows):
    bm = benchmark(rows, best="ultralytics_openvino_fp32")
    peer = {"format": "openvino_int8", "runtime": "openvino", "ultralytics_version": "9.9.9",
            "calibration_images": 7, "calibration_split": "train", "box_map50_95": 0.5}
    body, used = sections.variants({"benchmark": bm, "peer/openvino_int8": peer})
    assert used == {"benchmark", "peer/openvino_int8"}  # the other peers have no metrics file here
    table = next(b for b in body if b.startswith("| variant"))
    header, _, *lines = table.splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "vs fastest FP32 (`ultralytics_openvino_fp32`)" in columns and "runtime" in columns
    cells = {ln.split("|")[1].strip(): [c.strip() for c in ln.strip("|").split("|")] for ln in lines}
    assert set(cells) == {f"`{k}` *(Ultralytics)*" if k.startswith("ultralytics_") else f"`{k}`" for k in rows}
    ov = cells["`ultralytics_openvino_int8` *(Ultralytics)*"]
    assert ov[columns.index("runtime")] == "openvino, bf16"
    fast = cells["`int8_fast`"]
    assert fast[columns.index("runtime")] == "onnxruntime"
    assert fast[columns.index("vs fastest FP32 (`ultralytics_openvino_fp32`)")] == times(24.0 / 6.5)
    assert fast[columns.index("speed-up vs ONNX FP32")] == times(60.0 / 6.5)
    text = "\n".join(body)
    assert "Ultralytics 9.9.9" in text and "`openvino_int8` (calibrated on 7 train images" in text


def test_report_has_the_targets_and_reports_the_peer_files(rows, tmp_path):
    from posecompress.report.document import build_report

    metrics = tmp_path / "metrics"
    (metrics / "peer").mkdir(parents=True)
    (metrics / "benchmark.json").write_text(json.dumps(benchmark(rows)))
    (metrics / "peer" / "openvino_int8.json").write_text(json.dumps({"format": "openvino_int8", "size_bytes": 5}))
    text = build_report(metrics, tmp_path / "no-plots", tmp_path / "figures", spec=SPEC)
    assert "## Targets" in text and "**met**" in text.split("## Targets")[1]
    assert "## Other metrics" not in text  # the peer file is the variants section's


def test_each_recorded_run_is_held_to_its_own_baselines_targets(rows):
    """yolo11n-pose's list: `fast` INT8 at least 5x its own FP32 ONNX; a run of any other
    architecture is held to `default`; the table says which run each row is."""
    rows["int8_fast"] = row(60.0 / 5.2, 0.85, 0.395)  # 5.2x: meets yolo11n-pose's 5x, misses the demo's 6x
    bm = benchmark(rows)
    demo = {"benchmark": bm, "eval_baseline": {"architecture": "yolov8n-pose"}}
    yolo11 = {"benchmark": json.loads(json.dumps(bm)), "eval_baseline": {"architecture": "yolo11n-pose"}}
    yolo11_targets = SPEC["baselines"]["yolo11n-pose"]
    assert targets.targets_of(yolo11, SPEC) == yolo11_targets and targets.targets_of(demo, SPEC) == TARGETS
    body, used = targets.targets(demo, SPEC, {"yolo11n-pose": yolo11})
    lines = [x for x in body[1].splitlines() if x.startswith("| ") and "---" not in x][1:]
    ours = [x for x in lines if x.startswith("| yolov8n-pose (this run) |")]
    theirs = [x for x in lines if x.startswith("| yolo11n-pose |")]
    assert len(ours) == len(TARGETS) and len(theirs) == len(yolo11_targets) and used == {"benchmark"}
    speed = next(x for x in theirs if "5× as fast" in x)
    assert "5.20×" in speed and "**met**" in speed
    assert any("6× as fast" in x and "**missed**: 13.3% short of 6×" in x for x in ours)
    assert targets.targets(demo, SPEC)[0][1].startswith("| target |")  # one run: no run column


def test_a_dead_model_meets_no_accuracy_target(rows):
    """A model scoring 0 against a baseline scoring 0 has lost nothing, and proves nothing."""
    for name in rows:
        rows[name]["pose_map50"] = rows[name]["pose_map50_95"] = 0.0
    got = by_target(benchmark(rows))
    accuracy = [t for t in got.values() if t["figure"] != "speed"]
    assert accuracy and all(t["state"] == targets.NOT_MEASURABLE and not t["met"] for t in accuracy)
    text = "\n".join(targets.targets({"benchmark": benchmark(rows)}, SPEC)[0])
    assert "**not measurable**: `onnx_baseline` scores under the 5.00% floor" in text
    assert "pose mAP50-95 within 1.00 points" in text and "the same → met" not in text


def test_a_speed_short_by_less_than_the_noise_band_is_within_noise_not_missed(rows):
    rows["int8_fast"] = row(60.0 / 5.95, 0.85, 0.395)  # 0.8% short of 6x, inside the 2% band
    t = by_target(benchmark(rows))[("int8_fast", "speed", "onnx_baseline")]
    assert t["state"] == targets.WITHIN_NOISE and not t["met"]
    line = next(x for x in "\n".join(targets.targets({"benchmark": benchmark(rows)}, SPEC)[0]).splitlines()
                if "6× as fast as `onnx_baseline`" in x)
    assert "**within noise**: 0.8% short of 6×, inside the run's noise band" in line and "missed" not in line


@pytest.mark.parametrize("entry, message", [
    ({"variant": "int8_fast", "against": "onnx_baseline", "min_speedup": 6, "max_loss_pose_map50": 0.01},
     "parameter targets.baselines.default[0]: expected exactly one of"),
    ({"variant": "int8_fast", "against": "onnx_baseline", "min_speedp": 6},
     "parameter targets.baselines.default[0].min_speedp: unknown key; did you mean min_speedup?"),
    ({"variant": "int8_fast", "min_speedup": 6}, "parameter targets.baselines.default[0].against: missing"),
])
def test_targets_are_checked_in_one_line(tmp_path, entry, message):
    path = tmp_path / "params.yaml"
    path.write_text(json.dumps({"targets": {"accuracy_floor": 0.05, "baselines": {"default": [entry]}}}))
    with pytest.raises(InputError) as e:
        targets.read_targets(path)
    assert str(e.value).startswith(message), str(e.value)


def test_the_verdict_fails_on_a_newly_missed_target_only(rows):
    from posecompress.review.verdict import target_lines

    met = {"benchmark": benchmark(rows)}
    slow = dict(rows, int8_fast=row(60.0 / 5.0, 0.85, 0.395))  # 5x: misses 6x beyond the band
    missed = {"benchmark": benchmark(slow)}
    lines, new = target_lines(met, missed, SPEC, "main")
    assert new == 1 and lines[0].startswith("**1 target missed**")
    assert "- `int8_fast` speed 6× as fast as `onnx_baseline`: **newly missed**, met or absent at `main`" in lines
    lines, new = target_lines(missed, missed, SPEC, "main")
    assert new == 0 and "also missed at `main`" in lines[1]
    assert target_lines(met, met, SPEC, "main") == ([], 0)
