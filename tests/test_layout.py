"""The house rules, checked against dvc.yaml as DVC resolves it: stages/ holds what it runs, each
stage declares the code and parameters it reads, and the pipeline does not import the demo."""
import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def dvc_stages() -> dict:
    """{stage address: (module run, declared code paths, declared params)} of every command stage."""
    from dvc.repo import Repo

    out = {}
    for st in Repo(str(ROOT)).index.stages:
        cmd = getattr(st, "cmd", None)
        if not cmd:
            continue
        module = cmd.split()[cmd.split().index("-m") + 1]
        params = [p for d in st.deps if hasattr(d, "params") for p in (d.params or [])]
        paths = [d.def_path for d in st.deps if not hasattr(d, "params")]
        out[st.addressing] = module, paths, params
    return out


STAGES = dvc_stages()


def module_file(name: str):
    path = ROOT / Path(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def project_files(module: str) -> set:
    """Every project file a module runs: its imports (also those inside functions) and their
    packages' __init__ files, followed through the project."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        f = module_file(name)
        if f is None or f in seen:
            continue
        seen.add(f)
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return {f.relative_to(ROOT).as_posix() for f in seen}


def test_stages_folder_holds_only_what_dvc_runs():
    run = {module for module, _, _ in STAGES.values()}
    modules = {f"stages.{p.stem}" for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__"}
    assert modules == run


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_the_code_it_runs(stage):
    module, paths, _ = STAGES[stage]
    undeclared = {f for f in project_files(module)
                  if not any(f == p or f.startswith(p.rstrip("/") + "/") for p in paths)}
    assert not undeclared, f"{stage} runs {sorted(undeclared)} but dvc.yaml does not list them"


def minimal_params(declared: list, tmp_path) -> Path:
    """A params.yaml holding the project's values of the declared parameters and nothing else."""
    full, out = yaml.safe_load((ROOT / "params.yaml").read_text()), {}
    for name in declared:
        value, node = full, out
        keys = name.split(".")
        for k in keys:
            value = value[k]
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(out))
    return path


@pytest.mark.parametrize("stage", sorted(s for s, (m, _, _) in STAGES.items()
                                         if hasattr(importlib.import_module(m), "read_params")))
def test_stage_reads_no_parameter_it_does_not_declare(stage, tmp_path):
    """Its parameter reader, given only the declared parameters, finds all it needs (reading
    anything else fails with `missing` or `no section`)."""
    module, _, declared = STAGES[stage]
    read_params = importlib.import_module(module).read_params
    path = minimal_params(declared, tmp_path)
    recipe = stage.split("@")[1] if "@" in stage else None
    if "recipe" in inspect.signature(read_params).parameters:
        read_params(path, recipe)
    else:
        read_params(path)


def test_pipeline_and_tools_do_not_import_the_demo():
    for folder in ("stages", "tools", "posecompress"):
        for f in (ROOT / folder).rglob("*.py"):
            module = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            assert not [x for x in project_files(module) if x.startswith("demo/")], module
