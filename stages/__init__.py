"""Pipeline stages: one module per stage of dvc.yaml, run as `python -m stages.<name>`.

Each is a thin `main()` over the library in `posecompress/`; importing that package first makes
Ultralytics work offline (see posecompress/__init__.py).
"""
import posecompress  # noqa: F401
