"""eval_baseline on a tiny model: Ultralytics' validator, metrics keys, bad input before work."""
import json
import re
import sys

import pytest
import yaml

from tests.conftest import ACCURACY, ROOT, ROUNDING, run, stage_main, ultralytics_accuracy, write_params

STAGE = [sys.executable, "-m", "stages.eval_baseline"]


def stage(tmp_path, model, data, params=None, check=True):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"eval_baseline": params or {"imgsz": 64, "batch": 4}}))
    metrics = tmp_path / "out" / "eval_baseline.json"
    res = run(STAGE + ["--model", str(model), "--data", str(data), "--metrics", str(metrics),
                       "--params", str(params_file)], ROOT, check=check)
    return res, metrics


def test_writes_pose_box_and_size_metrics(tmp_path, tiny_inputs):
    model, data = tiny_inputs / "models" / "yolo_pose.pt", tiny_inputs / "pose" / "pose.yaml"
    _, metrics = stage(tmp_path, model, data)
    m = json.loads(metrics.read_text())
    assert set(m) == {"architecture", *ACCURACY, "params", "gflops"}
    assert m["architecture"] == "yolov8n-pose"  # the Ultralytics YAML the tiny model was built from
    # Ultralytics' validator on the same checkpoint at eval_baseline's imgsz and batch
    want = ultralytics_accuracy(model, data, 64, 4, tmp_path / "val")
    assert {k: m[k] for k in ACCURACY} == pytest.approx(want, abs=ROUNDING)
    assert 3_000_000 < m["params"] < 3_500_000  # yolov8n-pose
    assert m["gflops"] > 0


def wrong_kpt_shape(tmp_path, data):
    spec = yaml.safe_load((data / "pose" / "pose.yaml").read_text())
    spec.update(kpt_shape=[5, 3], path=str(data / "pose"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    return bad


def nowhere(tmp_path, data):
    bad = tmp_path / "nowhere.yaml"
    bad.write_text(yaml.safe_dump({"train": "images/train", "val": "images/val", "kpt_shape": [17, 3]}))
    return bad


def detect_model(tmp_path, data):
    from ultralytics import YOLO

    path = tmp_path / "detect.pt"
    YOLO("yolov8n.yaml").save(str(path))
    return path


def not_a_checkpoint(tmp_path, data):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    return path


def empty_file(tmp_path, data):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    return path


def truncated_checkpoint(tmp_path, data):
    path = tmp_path / "truncated.pt"
    path.write_bytes((data / "models" / "yolo_pose.pt").read_bytes()[:2000])
    return path


def bad_yaml(tmp_path, data):
    bad = tmp_path / "broken.yaml"
    bad.write_text("train: images/train\nval: [images/val\nkpt_shape: [17, 3]\n")
    return bad


@pytest.mark.parametrize("make_model, make_data, params, message", [
    (lambda t, d: t / "missing.pt", None, None, "model {}: not found"),
    (not_a_checkpoint, None, None, "not a readable YOLO checkpoint"),
    (empty_file, None, None, "model {}: empty file (0 bytes), not a YOLO checkpoint"),
    (truncated_checkpoint, None, None, "model {}: not a readable YOLO checkpoint (TypeError: the file is empty, "
                                       "truncated or corrupted (RuntimeError: PytorchStreamReader failed"),
    (None, bad_yaml, None, "not valid YAML (line 3, column 10: expected ',' or ']'"),
    (detect_model, None, None, "a YOLO 'detect' model, not a pose model"),
    (None, wrong_kpt_shape, None, "kpt_shape is [5, 3], expected [17, 3]"),
    (None, nowhere, None, "train images"),
])
def test_bad_input_stops_with_one_line(tmp_path, tiny_inputs, make_model, make_data, params, message):
    model = make_model(tmp_path, tiny_inputs) if make_model else tiny_inputs / "models" / "yolo_pose.pt"
    data = make_data(tmp_path, tiny_inputs) if make_data else tiny_inputs / "pose" / "pose.yaml"
    res, metrics = stage(tmp_path, model, data, params, check=False)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message.format(model) in lines[0]
    assert not metrics.parent.exists() or not any(metrics.parent.iterdir())
    assert "re-download" not in lines[0] and lines[0].count("(") == lines[0].count(")")


@pytest.mark.parametrize("params, message", [
    ({"imgsz": "big", "batch": 4}, "parameter eval_baseline.imgsz: expected int, got 'big'"),
    ({"imgsz": 64, "batch": 0}, "parameter eval_baseline.batch: 0 is below 1"),
    ({"imgsz": 64}, "parameter eval_baseline.batch: missing"),
])
def test_bad_parameter_stops_before_work(monkeypatch, tmp_path, params, message):
    """main() in this process stops on the parameter before it writes anything; the model and dataset
    it is given do not exist, so reading either first would stop it with another message."""
    from posecompress.common.checks import InputError

    metrics = tmp_path / "out" / "eval_baseline.json"
    with pytest.raises(InputError, match=re.escape(message)):
        stage_main(monkeypatch, "eval_baseline", "--model", tmp_path / "absent.pt", "--data",
                   tmp_path / "absent.yaml", "--metrics", metrics,
                   "--params", write_params(tmp_path, eval_baseline=params))
    assert not metrics.parent.exists()


def test_params_file_syntax_error_names_the_line(tmp_path, tiny_inputs):
    params = tmp_path / "params.yaml"
    params.write_text("eval_baseline:\n  imgsz: 64\n   batch: 4\n")
    res = run(STAGE + ["--model", str(tiny_inputs / "models" / "yolo_pose.pt"), "--data",
                       str(tiny_inputs / "pose" / "pose.yaml"), "--metrics", str(tmp_path / "m.json"),
                       "--params", str(params)], ROOT, check=False)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: params file {params}: not valid YAML (line 3, column 9: mapping values are not allowed here)"]
