"""Third-party INFO chatter stays off the console (posecompress/quiet_logs.py): NNCF's lines in a
real OpenVINO quantize of the tiny model, TensorFlow's absl notices at its import; warnings still
pass, and POSECOMPRESS_VERBOSE=1 lets the INFO lines back."""
import os
import re
import sys

from tests.conftest import ROOT, run
from tests.test_export_quantize import OPENVINO, exported, quantize_stage  # noqa: F401  (exported: a fixture)

QUIET = {k: v for k, v in os.environ.items() if k != "POSECOMPRESS_VERBOSE"}
ABSL_INFO = re.compile(r"^I\d{4} ", re.M)


def test_openvino_quantize_prints_its_summary_without_nncf_info(tmp_path, tiny_data, exported):  # noqa: F811
    data = tiny_data / "pose" / "pose.yaml"
    res, out, _ = quantize_stage(tmp_path / "quiet", exported[0], data, OPENVINO, env=QUIET)
    assert "INFO:nncf" not in res.stdout + res.stderr
    assert f"{out / 'int8_openvino_model'}: openvino INT8, " in res.stdout

    res, _, _ = quantize_stage(tmp_path / "verbose", exported[0], data, OPENVINO,
                               env={**QUIET, "POSECOMPRESS_VERBOSE": "1"})
    assert "INFO:nncf:Not adding activation input quantizer" in res.stdout


def test_tensorflow_imports_without_absl_info_and_keeps_warnings():
    # A C++ library writes to file descriptor 2 during the filtered import: its INFO record is
    # dropped, its warning kept.
    code = ("import os, posecompress.quiet_logs as q\n"
            "q.import_tensorflow()\n"
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
            "with q._absl_info_dropped():\n"
            "    os.write(2, b'I0101 00:00:00.000001 7 lib.cc:1] info\\nW0101 00:00:00.000002 7 lib.cc:2] warned\\n')\n")
    res = run([sys.executable, "-c", code], ROOT, env=QUIET)
    assert res.stdout.split() == ["1"]  # TensorFlow's own warnings and errors on
    assert not ABSL_INFO.search(res.stderr) and "absl::InitializeLog" not in res.stderr, res.stderr
    assert "W0101 00:00:00.000002 7 lib.cc:2] warned" in res.stderr
