"""The runtimes an exported model runs in: one table, read by every stage that opens a model.

| runtime     | kind     | a model is                                 | run by                                   | INT8 convolutions counted      | metadata in         | runs at another input shape |
|-------------|----------|--------------------------------------------|------------------------------------------|--------------------------------|---------------------|-----------------------------|
| onnxruntime | onnx     | an `.onnx` file                            | sessions.onnx_runner, throughput.onnx_throughput | formats.onnx_int8_convs (QLinearConv, ConvInteger, DQ -> Conv) | ONNX metadata_props | only if exported dynamic    |
| openvino    | openvino | an IR folder `<stem>_openvino_model/` or its `.xml` | sessions.openvino_runner, throughput.openvino_throughput | formats.ir_int8_convs (INT8 weights, FakeQuantize input) | metadata.yaml | yes: compiled for the shape |

`kind` prefixes the benchmark's variant kinds (`onnx_int8`, `openvino_fp32`). Adding a runtime
is one row of RUNTIMES (its format's readers in formats.py, its runners in sessions.py and
throughput.py); the quantize modes name the runtime they write for by its `name`.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from posecompress.runtime import formats, sessions, throughput


@dataclass(frozen=True)
class Runtime:
    name: str
    kind: str
    claims: Callable  # path -> whether the path is a model of this runtime's format
    runner: Callable  # (path, threads, shape, what) -> fn(array) -> outputs; fn.float_precision
    throughput_runner: Callable  # (path, threads, shape, what) -> fn(list of arrays); fn.streams, .requests
    int8_convs: Callable  # path -> convolutions that run in INT8
    metadata: Callable  # path -> Ultralytics' export metadata as Python values
    io_dims: Callable  # path -> (input name, input dims, first output name, its dims), '?' when free
    reshapes: bool  # whether a model with a static input shape runs at another one


def _onnx_runner(path, threads=None, shape=None, what: str = "ONNX model"):
    run = sessions.onnx_runner(path, threads, what)
    run.float_precision = "f32"
    return run


def _onnx_throughput(path, threads: int, shape=None, what: str = "ONNX model"):
    return throughput.onnx_throughput(path, threads, what)


OPENVINO = Runtime("openvino", "openvino", formats.is_ir, sessions.openvino_runner, throughput.openvino_throughput,
                   formats.ir_int8_convs, formats.ir_metadata, formats.ir_io_dims, reshapes=True)
ONNXRUNTIME = Runtime("onnxruntime", "onnx", lambda p: True, _onnx_runner, _onnx_throughput,
                      formats.onnx_int8_convs, formats.onnx_metadata, formats.onnx_io_dims, reshapes=False)
RUNTIMES = (OPENVINO, ONNXRUNTIME)  # asked in order; the last one takes any other file


def runtime_of(path) -> Runtime:
    """The runtime that runs an exported model (a file, an IR folder or an IR's .xml)."""
    return next(r for r in RUNTIMES if r.claims(Path(path)))
