"""Third-party INFO chatter kept off the console, so a stage shows its own progress and summary
line; the libraries' warnings and errors still reach it. POSECOMPRESS_VERBOSE=1 in the
environment lets the INFO lines through.

Import the noisy libraries through these functions: each one's log level can only be set once it
is imported (NNCF sets its own at import) or before (TensorFlow reads its level at import).
"""
import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager

VERBOSE_VARIABLE = "POSECOMPRESS_VERBOSE"

# absl's prefix for an INFO record (TensorFlow's C++ log), and the notice absl prints before its
# first record of a process
_ABSL_INFO = re.compile(r"^I\d{4} [\d:.]+ +\d+ [^\s\]]+:\d+\] ")
_ABSL_RECORD = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [^\s\]]+:\d+\] ")
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def import_nncf():
    """The nncf module, its INFO lines (one per operation it leaves unquantized) turned off."""
    import nncf

    if not verbose():
        nncf.set_log_level(logging.WARNING)
    return nncf


def import_tensorflow():
    """The tensorflow module, imported without its INFO notices (oneDNN, CPU features).

    TF_CPP_MIN_LOG_LEVEL 1 drops TensorFlow's C++ INFO records and keeps its warnings and errors
    (Ultralytics' import sets 3, which drops errors too). TensorFlow 2.21 logs its oneDNN notice
    through absl during the import whatever that variable says, so the import's own stderr is
    filtered: its absl INFO records are dropped, all else is written back."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose() else "1"
    if verbose():
        import tensorflow
    else:
        with _absl_info_dropped():
            import tensorflow
    return tensorflow


@contextmanager
def _absl_info_dropped():
    """File descriptor 2 (C++ libraries write there, not to sys.stderr) caught in a file meanwhile;
    then written back to stderr without absl's INFO records, or the absl notice when no other
    absl record is left."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                     if not _ABSL_INFO.match(line)]
            if not any(_ABSL_RECORD.match(line) for line in lines):
                lines = [line for line in lines if line.rstrip("\n") != _ABSL_NOTICE]
            sys.stderr.write("".join(lines))
            sys.stderr.flush()
