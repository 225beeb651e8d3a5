"""Every inference session the pipeline builds itself, built one way.

onnxruntime on the CPU: a fixed intra-op thread count (None: onnxruntime's default, every core),
one inter-op thread, sequential execution, and no spinning: idle pool threads would otherwise
spin after each call and take the cores from the next model timed in turn. (Ultralytics' own
runs of an ONNX file, its validator and `predict`, build theirs inside its AutoBackend.)
OpenVINO on the CPU: latency hint, one stream, a fixed thread count, and the precision the CPU
plugin chooses for float parts (bf16 where the CPU has AVX512-BF16, as Ultralytics runs it; the
metrics record it). Each runtime has a function of the same shape, a model in and a callable out, named in
runtime/runtimes.py's table.
"""
from posecompress.common.checks import InputError
from posecompress.runtime.formats import ir_xml


def onnx_session(path, threads=None, what: str = "ONNX model"):
    """An onnxruntime CPU session for a file; InputError naming the file (as `what`) if it does not load."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail / InvalidGraph types
        raise InputError(f"{what} {path}: not loadable by ONNX Runtime ({e.__class__.__name__})") from None


def session_runner(sess):
    """A function feeding an array to the session's first input and returning every output."""
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})


def onnx_runner(path, threads=None, what: str = "ONNX model"):
    """session_runner of a file's onnx_session."""
    return session_runner(onnx_session(path, threads, what))


def compiled_ir(path, config: dict, shape=None, what: str = "OpenVINO model"):
    """An OpenVINO IR (folder or .xml) compiled for the CPU with `config`, reshaped to `shape` first
    when given; InputError naming the file (as `what`) if it does not load."""
    import openvino as ov

    core = ov.Core()
    try:
        model = core.read_model(str(ir_xml(path)))
        if shape is not None:
            model.reshape(list(shape))
        return core.compile_model(model, "CPU", config)
    except RuntimeError as e:
        raise InputError(f"{what} {path}: not loadable by OpenVINO ({e.__class__.__name__})") from None


def openvino_model(path, threads=None, shape=None, what: str = "OpenVINO model"):
    """compiled_ir with the latency settings; compiled for one input shape when `shape` is given
    (OpenVINO runs a static shape faster than a free one: 5-10% on the demo's INT8 models), else
    as the file says."""
    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return compiled_ir(path, config, shape, what)


def float_precision(compiled) -> str:
    """The precision an OpenVINO compiled model runs its float parts in ('f32', 'bf16')."""
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


def openvino_runner(path, threads=None, shape=None, what: str = "OpenVINO model"):
    """A function feeding an array to an openvino_model and returning every output; its
    `float_precision` says what the float parts run in."""
    compiled = openvino_model(path, threads, shape, what)
    request = compiled.create_infer_request()

    def run(x):
        return list(request.infer({0: x}).values())
    run.float_precision = float_precision(compiled)  # the benchmark records it beside the latency
    return run
