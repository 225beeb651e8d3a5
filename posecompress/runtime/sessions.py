"""Every inference session the pipeline builds itself, built one way.

onnxruntime on the CPU: a fixed intra-op thread count (None: onnxruntime's default, every core),
one inter-op thread, sequential execution, and no spinning: idle pool threads would otherwise
spin after each call and take the cores from the next model timed in turn. (Ultralytics' own
runs of an ONNX file, its validator and `predict`, build theirs inside its AutoBackend.)
A runtime added here (OpenVINO) gets a function of the same shape: a file in, a callable out.
"""
from posecompress.common.checks import InputError


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
