"""The house rules, checked against dvc.yaml as DVC resolves it: stages/ holds what it runs, each
stage declares the code and parameters it reads, and the pipeline does not import the demo."""
import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run
from tools.code_deps import CODE_ROOTS, project_files


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


def test_stages_folder_holds_only_what_dvc_runs():
    run = {module for module, _, _ in STAGES.values()}
    modules = {f"stages.{p.stem}" for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__"}
    assert modules == run


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_exactly_the_code_it_runs(stage):
    """Files, not folders: nothing it imports missing (an edit would not re-run it), nothing it
    does not import listed (an edit elsewhere would re-run it). `python -m tools.code_deps --write`
    brings dvc.yaml up to date."""
    module, paths, _ = STAGES[stage]
    declared = {p for p in paths if p.startswith(CODE_ROOTS)}
    runs = project_files(module)
    assert declared == runs, (f"{stage}: dvc.yaml misses {sorted(runs - declared)} and lists "
                              f"{sorted(declared - runs)} it does not import")


def test_an_edit_to_quantization_code_leaves_the_training_stages_alone(finished_project, tmp_path):
    """A comment added to quantize_modes.py changes the quantize stages (and any other stage that
    imports it), never eval_baseline, prune or finetune."""
    import json
    import shutil

    repo, _, _ = finished_project
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    with (copy / "posecompress/yolo/quantize_modes.py").open("a") as f:
        f.write("# an edit\n")
    status = json.loads(run(["dvc", "status", "--json"], copy).stdout)
    changed = {name for name in status if ":" not in name}  # stage names, not .dvc files
    importers = {s for s, (m, _, _) in STAGES.items() if "posecompress/yolo/quantize_modes.py" in project_files(m)}
    assert {"quantize_baseline", "quantize@fast", "quantize@reference"} <= changed
    assert changed == importers
    assert not changed & {"eval_baseline", "prune@fast", "finetune@fast", "prune@reference", "finetune@reference"}


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


def documented_settings() -> list:
    """(file, name, value) of every `-S name=value` in the README's and docs' `dvc exp run`
    examples; a sweep's comma list gives each of its values."""
    import re
    import shlex

    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            commands = re.findall(r"`([^`]*dvc exp run[^`]*)`", line) or \
                ([line.split("#")[0]] if line.lstrip().startswith("dvc exp run") else [])
            for command in commands:
                words = shlex.split(command)
                for flag, setting in zip(words, words[1:]):
                    if flag == "-S" and "=" in setting:
                        name, values = setting.lstrip("+").split("=", 1)
                        found += [(doc.name, name, yaml.safe_load(v)) for v in re.split(r",(?![^\[]*\])", values)]
    return found


@pytest.mark.parametrize("doc, name, value", documented_settings())
def test_every_documented_setting_is_accepted_by_the_stages_reading_it(doc, name, value, tmp_path):
    """Each example parameter, set in params.yaml, passes the parameter reader of every stage that
    declares it (a missing companion key or a value out of range would stop the experiment)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    node, keys = params, name.split(".")
    for k in keys[:-1]:
        node = node[k]
    assert keys[-1] in node or name.startswith("baseline."), f"{doc}: {name} is not in params.yaml"
    node[keys[-1]] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    readers = [s for s, (m, _, declared) in STAGES.items()
               if any(name == d or name.startswith(d + ".") for d in declared)
               and hasattr(importlib.import_module(m), "read_params")]
    assert readers or name.startswith("baseline."), f"{doc}: no stage reads {name}"
    for stage in readers:
        read_params = importlib.import_module(STAGES[stage][0]).read_params
        if "recipe" in inspect.signature(read_params).parameters:
            read_params(path, stage.split("@")[1])
        else:
            read_params(path)


# posecompress/__init__.py's docstring: each layer imports only the ones before it (and itself);
# yolo and classifier, side by side, not each other.
LAYERS = {"common": 0, "quiet_logs": 0, "runtime": 1, "yolo": 2, "classifier": 2, "system": 3,
          "report": 4, "review": 5}


def imported_modules(path: Path) -> set:
    """posecompress modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.startswith("posecompress.")}


def test_no_library_layer_imports_a_higher_one():
    package = ROOT / "posecompress"
    assert {p.stem if p.is_file() else p.name for p in package.iterdir()
            if p.suffix == ".py" and p.stem != "__init__" or p.is_dir() and (p / "__init__.py").is_file()} == set(LAYERS)
    wrong = []
    for f in sorted(package.rglob("*.py")):
        own = f.relative_to(package).parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for m in imported_modules(f):
            other = m.split(".")[1]
            if LAYERS[other] > LAYERS[own] or (LAYERS[other] == LAYERS[own] and other != own):
                wrong.append(f"{f.relative_to(ROOT)} imports {m}")
    assert not wrong, wrong
