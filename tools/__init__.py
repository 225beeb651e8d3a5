"""Tools around the pipeline, run as `python -m tools.<name>`: predict (a pair on your own
images), verdict (the pull request's verdict), exp_plot (experiments compared) and
push_run_cache (the run-cache and its metrics to a remote). None is a DVC stage.
"""
import posecompress  # noqa: F401
