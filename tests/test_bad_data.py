"""Bad data stops a stage before any work: corrupt or unlabelled dataset files, an ONNX
model that is not a pose model, a fine-tune argument Ultralytics would reject late or ignore.
Each refusal is one `error:` line, exit status 2, and no output left behind."""
import json
import shutil
import sys

import onnx
import pytest
import yaml

from posecompress.common.checks import InputError, pose_dataset_yaml
from tests.conftest import ROOT, run

STATIC = {"mode": "static", "calibrate_method": "MinMax", "calibration_images": 4, "per_channel": True,
          "activation_type": "QUInt8", "weight_type": "QInt8", "keep_float": "head", "float_stem": False}


def refused(res, message, *outputs):
    """The stage stopped with one `error:` line holding `message`, exit 2, none of `outputs` there."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr[-3000:]
    assert message in lines[0], lines[0]
    for out in outputs:
        assert not out.exists(), out


# --- the dataset's files -------------------------------------------------------------------------

def pose_copy(tmp_path, tiny_data):
    """A copy of the tiny pose dataset that a test may damage; (its YAML, its folder)."""
    root = tmp_path / "pose"
    shutil.copytree(tiny_data / "pose", root, ignore=shutil.ignore_patterns("*.cache"))
    return root / "pose.yaml", root


def first(root, kind, split):
    return sorted((root / kind / split).iterdir())[0]


def truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep if keep > 0 else len(data) + keep])


def rewrite_first_line(path, change):
    lines = path.read_text().splitlines()
    row = lines[0].split()
    lines[0] = " ".join(change(row))
    path.write_text("\n".join(lines) + "\n")


def damage_two_val_files(root):
    truncate(first(root, "images", "val"), 100)  # the header only: no decoder gets an image
    rewrite_first_line(sorted((root / "labels" / "val").iterdir())[1], lambda row: row[:20])


DAMAGE = {
    "truncated val image": (lambda r: truncate(first(r, "images", "val"), 100),
                            "1 bad val file, first {root}/images/val/val_00000.jpg: unreadable image"),
    # OpenCV decodes this one, the missing half grey: only a decoder that must reach the end notices
    "half a train JPEG": (lambda r: truncate(first(r, "images", "train"), -600),
                          "1 bad train file, first {root}/images/train/train_00000.jpg: unreadable image"),
    "missing JPEG end marker": (lambda r: truncate(first(r, "images", "val"), -2),
                                "1 bad val file, first {root}/images/val/val_00000.jpg: unreadable image"),
    "20 label fields": (lambda r: rewrite_first_line(first(r, "labels", "val"), lambda row: row[:20]),
                        "first {root}/labels/val/val_00000.txt: line 1: 20 fields, expected 56"),
    "39 label fields (2-d keypoints)": (
        lambda r: rewrite_first_line(first(r, "labels", "val"), lambda row: row[:5] + [
            v for k in range(17) for v in row[5 + 3 * k:7 + 3 * k]]),
        "line 1: 39 fields, expected 56 (class, box, 17 keypoints x 3)"),
    "class index": (lambda r: rewrite_first_line(first(r, "labels", "train"), lambda row: ["1"] + row[1:]),
                    "train_00000.txt: line 1: class 1 is not an index of the dataset's 1 names"),
    "coordinate": (lambda r: rewrite_first_line(first(r, "labels", "val"), lambda row: row[:5] + ["1.5"] + row[6:]),
                   "val_00000.txt: line 1: coordinate 1.5 outside [0, 1]"),
    "not a number": (lambda r: rewrite_first_line(first(r, "labels", "val"), lambda row: row[:3] + ["x"] + row[4:]),
                     "val_00000.txt: line 1: not all numbers"),
    "repeated line": (lambda r: (lambda f: f.write_text(f.read_text().splitlines()[0] + "\n" + f.read_text()))(
        first(r, "labels", "val")), "val_00000.txt: line 2 repeats line 1"),
    "two bad files": (damage_two_val_files, "2 bad val files, first {root}/images/val/val_00000.jpg"),
    "empty val folder": (lambda r: [f.unlink() for f in (r / "images" / "val").iterdir()],
                         "no val images in {root}/images/val"),
    "no val labels": (lambda r: shutil.rmtree(r / "labels" / "val"),
                      "none of the 6 val images has a label file (looked for {root}/labels/val/val_00000.txt)"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_dataset_is_refused(tmp_path, tiny_data, damage):
    data, root = pose_copy(tmp_path, tiny_data)
    pose_dataset_yaml(data)  # whole, the copy passes
    make, message = DAMAGE[damage]
    make(root)
    with pytest.raises(InputError) as e:
        pose_dataset_yaml(data)
    assert str(e.value).startswith(f"dataset {data}: ") and message.format(root=root) in str(e.value)


def test_image_without_labels_is_a_legal_background_image(tmp_path, tiny_data):
    data, root = pose_copy(tmp_path, tiny_data)
    first(root, "labels", "val").unlink()
    (root / "labels" / "train" / "train_00001.txt").write_text("")  # an empty label file: no people
    assert pose_dataset_yaml(data) == data.resolve()


def test_dataset_without_class_names_is_refused(tmp_path, tiny_data):
    data, _ = pose_copy(tmp_path, tiny_data)
    spec = yaml.safe_load(data.read_text())
    del spec["names"]
    data.write_text(yaml.safe_dump(spec))
    with pytest.raises(InputError, match="no class 'names'"):
        pose_dataset_yaml(data)


@pytest.mark.parametrize("stage", ["eval_baseline", "prune", "finetune", "export_onnx", "quantize", "peer"])
def test_stages_refuse_a_damaged_dataset_before_work(tmp_path, tiny_data, tiny_yolo, params_file, stage):
    data, root = pose_copy(tmp_path, tiny_data)
    damage_two_val_files(root)
    out = tmp_path / "outputs"
    args = {"eval_baseline": [], "prune": ["--recipe", "fast", "--out", str(out / "prune" / "fast" / "model.pt")],
            "finetune": ["--recipe", "fast", "--out", str(out / "finetune" / "model.pt"),
                         "--plots", str(out / "p.csv")],
            "export_onnx": ["--out", str(out / "onnx" / "baseline.onnx")],
            "quantize": ["--out", str(out / "quantize" / "baseline")],
            "peer": ["--format", "openvino_int8", "--out", str(out / "peer" / "openvino_int8")]}[stage]
    res = run([sys.executable, "-m", f"stages.{stage}", "--model", str(tiny_yolo), "--data", str(data),
               "--metrics", str(out / "metrics.json"), "--params", str(params_file), *args], ROOT, check=False)
    refused(res, f"dataset {data}: 2 bad val files, first {root}/images/val/val_00000.jpg: unreadable image", out)


def test_prune_refuses_an_empty_val_folder_and_leaves_no_folder(tmp_path, tiny_data, tiny_yolo, params_file):
    data, root = pose_copy(tmp_path, tiny_data)
    DAMAGE["empty val folder"][0](root)
    out = tmp_path / "outputs" / "prune" / "fast"
    res = run([sys.executable, "-m", "stages.prune", "--recipe", "fast", "--model", str(tiny_yolo), "--data", str(data),
               "--out", str(out / "model.pt"), "--metrics", str(tmp_path / "m.json"), "--params", str(params_file)],
              ROOT, check=False)
    refused(res, f"no val images in {root}/images/val", tmp_path / "outputs", tmp_path / "m.json")


def test_atomic_path_removes_the_folders_it_made_when_writing_fails(tmp_path):
    from posecompress.common.outputs import atomic_path

    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "kept" / "new" / "deeper" / "model.pt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("the stage failed")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]


# --- ONNX models that are not pose models -------------------------------------------------------

def export(tmp_path, yaml_name, **kw):
    """Ultralytics' ONNX export of an untrained model built from its YAML (no download), at 64 px."""
    from ultralytics import YOLO

    pt = tmp_path / yaml_name.replace(".yaml", ".pt")
    YOLO(yaml_name).save(str(pt))  # exported beside this file, not in the working directory
    return YOLO(str(pt)).export(format="onnx", imgsz=64, verbose=False, **kw)


@pytest.fixture(scope="module")
def detect_onnx(tmp_path_factory):
    return export(tmp_path_factory.mktemp("detect"), "yolov8n.yaml")


def with_metadata(src, dst, **changes):
    """A copy of an ONNX file with metadata changed (None: removed)."""
    model = onnx.load(str(src))
    meta = {k: v for k, v in ({m.key: m.value for m in model.metadata_props} | changes).items() if v is not None}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(dst))
    return dst


def test_check_pose_export_takes_pose_heads_and_nothing_else(tmp_path, detect_onnx):
    from posecompress.yolo.exported import check_pose_export

    pose = export(tmp_path, "yolov8n-pose.yaml", dynamic=True)  # [batch, 56, anchors]
    end2end = export(tmp_path, "yolo26n-pose.yaml", nms=False)  # YOLO26's NMS-free head: [1, max_det, 57]
    assert {m.key: m.value for m in onnx.load(end2end).metadata_props}["end2end"] == "True"
    check_pose_export(pose)
    check_pose_export(end2end)
    cases = [
        (detect_onnx, "a YOLO 'detect' model, not a pose model"),
        # a detection graph labelled as a pose model: only its output gives it away
        (with_metadata(detect_onnx, tmp_path / "a.onnx", task="pose", kpt_shape="[17, 3]", names="{0: 'person'}"),
         "output output0 is [1, 84, 84], not a pose head's [1, 56, anchors]"),
        (with_metadata(end2end, tmp_path / "b.onnx", end2end="False"), "not a pose head's [1, 135, anchors]"),
        (with_metadata(pose, tmp_path / "c.onnx", kpt_shape="[5, 3]"), "kpt_shape is [5, 3], expected [17, 3]"),
        (with_metadata(pose, tmp_path / "d.onnx", task=None), "no Ultralytics metadata (task)"),
    ]
    for path, message in cases:
        with pytest.raises(InputError, match=r"model .*: ") as e:
            check_pose_export(path)
        assert message in str(e.value), str(e.value)


def test_check_pose_export_reads_openvino_ir_folders(tmp_path, detect_onnx):
    """An OpenVINO IR folder is checked as an ONNX file is: its metadata.yaml, then its graph's output."""
    import openvino as ov

    from posecompress.runtime.formats import onnx_metadata, write_openvino
    from posecompress.yolo.exported import check_pose_export

    pose = export(tmp_path, "yolov8n-pose.yaml", dynamic=True)

    def ir(src, name, **changes):
        meta = {k: v for k, v in (onnx_metadata(src) | changes).items() if v is not None}
        return write_openvino(ov.convert_model(str(src)), tmp_path / f"{name}_openvino_model", meta)

    check_pose_export(ir(pose, "pose"))
    cases = [
        (ir(detect_onnx, "detect"), "a YOLO 'detect' model, not a pose model"),
        (ir(detect_onnx, "labelled", task="pose", kpt_shape=[17, 3], names={0: "person"}),
         "is [1, 84, 84], not a pose head's [1, 56, anchors]"),
        (ir(pose, "five", kpt_shape=[5, 3]), "kpt_shape is [5, 3], expected [17, 3]"),
        (ir(pose, "bare", task=None), "no Ultralytics metadata (task)"),
    ]
    for path, message in cases:
        with pytest.raises(InputError, match=r"model .*: ") as e:
            check_pose_export(path)
        assert message in str(e.value), str(e.value)


def test_peer_refuses_a_detection_checkpoint(tmp_path, tiny_data, params_file):
    from ultralytics import YOLO

    detect = tmp_path / "detect.pt"
    YOLO("yolov8n.yaml").save(str(detect))
    out, metrics = tmp_path / "peer" / "openvino_fp32", tmp_path / "metrics" / "openvino_fp32.json"
    res = run([sys.executable, "-m", "stages.peer", "--format", "openvino_fp32", "--model", str(detect), "--data",
               str(tiny_data / "pose" / "pose.yaml"), "--out", str(out), "--metrics", str(metrics),
               "--params", str(params_file)], ROOT, check=False)
    refused(res, "not a pose model", out.parent, metrics.parent)


def test_quantize_refuses_a_detection_onnx(tmp_path, tiny_data, detect_onnx):
    out, metrics = tmp_path / "int8" / "baseline", tmp_path / "metrics" / "baseline.json"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"quantize_baseline": STATIC}))
    res = run([sys.executable, "-m", "stages.quantize", "--model", str(detect_onnx), "--data",
               str(tiny_data / "pose" / "pose.yaml"), "--out", str(out), "--metrics", str(metrics),
               "--params", str(params)], ROOT, check=False)
    refused(res, f"model {detect_onnx}: a YOLO 'detect' model, not a pose model", out.parent, metrics.parent)


def test_benchmark_refuses_a_detection_onnx(tmp_path, tiny_data, tiny_yolo, detect_onnx):
    dirs = {d: tmp_path / d for d in ("onnx", "int8", "export_metrics", "quantize_metrics")}
    for d in dirs.values():
        d.mkdir()
    # the FP32 and INT8 variants of the baseline (quantize's folder): both a detection model
    shutil.copy(detect_onnx, dirs["onnx"] / "baseline.onnx")
    (dirs["int8"] / "baseline").mkdir()
    shutil.copy(detect_onnx, dirs["int8"] / "baseline" / "int8.onnx")
    for d in ("export_metrics", "quantize_metrics"):
        (dirs[d] / "baseline.json").write_text(json.dumps({"pose_map50": 0.5, "pose_map50_95": 0.3}))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"benchmark": {"imgsz": [64, 64], "images": 2, "warmup": 0, "threads": 1,
                                                    "statistic": "min", "throughput_images": 2,
                                                    "throughput_threads": 0},
                                      "recipes": {}, "peers": {"formats": []}}))
    out = tmp_path / "out"
    res = run([sys.executable, "-m", "stages.benchmark", "--baseline", str(tiny_yolo), "--finetuned",
               str(tmp_path / "finetune" / "{name}" / "model.pt"), "--onnx", str(dirs["onnx"] / "{name}.onnx"),
               "--int8", str(dirs["int8"] / "{name}"), "--export-metrics", str(dirs["export_metrics"] / "{name}.json"),
               "--quantize-metrics", str(dirs["quantize_metrics"] / "{name}.json"),
               "--peer", str(tmp_path / "peer" / "{name}"), "--peer-metrics", str(tmp_path / "peer_metrics" / "{name}.json"),
               "--data", str(tiny_data / "pose" / "pose.yaml"), "--metrics", str(out / "benchmark.json"),
               "--plot", str(out / "variants.csv"), "--params", str(params)], ROOT, check=False)
    refused(res, f"model {dirs['onnx'] / 'baseline.onnx'}: a YOLO 'detect' model, not a pose model", out)


# --- fine-tune arguments -------------------------------------------------------------------------

def bad_finetune(params_file, tmp_path, recipe, **changes):
    params = yaml.safe_load(params_file.read_text())
    params["recipes"][recipe]["finetune"].update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_finetune_refuses_an_unknown_optimizer_before_work(tmp_path, tiny_data, tiny_yolo, params_file):
    out = tmp_path / "outputs"
    res = run([sys.executable, "-m", "stages.finetune", "--recipe", "reference", "--model", str(tiny_yolo),
               "--data", str(tiny_data / "pose" / "pose.yaml"), "--out", str(out / "model.pt"),
               "--metrics", str(out / "m.json"), "--plots", str(out / "p.csv"),
               "--params", str(bad_finetune(params_file, tmp_path, "reference", optimizer="Bogus"))], ROOT, check=False)
    refused(res, "parameter recipes.reference.finetune.optimizer: 'Bogus' is not one of SGD, MuSGD, Adam", out)


@pytest.mark.parametrize("changes, message", [
    ({"optimizer": 3}, "optimizer: 'optimizer=3' is of invalid type int"),
    ({"cache": "sometimes"}, "cache: 'sometimes' is not one of False, True, ram, disk"),
    ({"cache": 1}, "cache: 1 is not one of"),
    ({"copy_paste_mode": "Flip"}, "copy_paste_mode: 'Flip' is not one of flip, mixup"),
    ({"split": "tset"}, "split: 'tset' is not one of train, val, test"),
    ({"freeze": "backbone"}, "freeze: expected a number of leading layers"),
    ({"freeze": [0, -1]}, "freeze: expected a number of leading layers"),
    ({"lr0": "fast"}, "lr0: 'lr0=fast' is of invalid type str"),
    ({"momentum": 1.5}, "momentum: 'momentum=1.5' is an invalid value"),
    ({"learning_rate": 0.1}, "learning_rate: 'learning_rate' is not a valid YOLO argument"),
    ({"label_smoothing": 0.1}, "label_smoothing: deprecated or removed"),
])
def test_finetune_checks_every_train_argument_and_value(params_file, tmp_path, changes, message):
    from stages.finetune import read_params

    with pytest.raises(InputError) as e:
        read_params(bad_finetune(params_file, tmp_path, "fast", **changes), "fast")
    assert str(e.value).startswith("parameter recipes.fast.finetune.") and message in str(e.value), str(e.value)


def test_finetune_takes_what_ultralytics_takes(params_file, tmp_path):
    from stages.finetune import read_params

    p = read_params(bad_finetune(params_file, tmp_path, "fast", optimizer="rmsprop", cache="disk",
                                 freeze=[0, "22.cv4"], split="val"), "fast")
    assert p["optimizer"] == "RMSprop" and p["cache"] == "disk" and p["freeze"] == [0, "22.cv4"]


def test_optimizer_names_are_ultralytics_own(tmp_path, tiny_data, tiny_yolo):
    """Ultralytics' trainer builds every optimizer the check lets through, and fails late on others."""
    from ultralytics.models.yolo.pose import PoseTrainer

    from posecompress.yolo.train_args import OPTIMIZERS
    from posecompress.yolo.models import load_pose_model

    trainer = PoseTrainer(overrides={"model": str(tiny_yolo), "data": str(tiny_data / "pose" / "pose.yaml"),
                                     "device": "cpu", "project": str(tmp_path), "name": "t", "workers": 0})
    module = load_pose_model(tiny_yolo).model
    for name in OPTIMIZERS:
        assert trainer.build_optimizer(module, name=name.lower()).param_groups
    with pytest.raises(NotImplementedError):
        trainer.build_optimizer(module, name="Bogus")
