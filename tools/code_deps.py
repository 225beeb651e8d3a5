"""Each stage's code dependencies in dvc.yaml: exactly the project files its module imports.

    python -m tools.code_deps           # print the stages whose declared code differs
    python -m tools.code_deps --write   # rewrite those lists in dvc.yaml, comments kept

A stage that declared a whole folder re-ran after any edit in it (a quantize change re-ran the
fine-tune); one that declared too little was not re-run after an edit it depends on. The lists
are the import closure of the stage's module (imports inside functions included), files only.
tests/test_layout.py fails when dvc.yaml and the closure differ, either way.
"""
import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("stages/", "posecompress/", "tools/")


def module_file(name: str) -> Path | None:
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


def stage_modules(dvc_yaml: dict) -> dict:
    """{stage name in dvc.yaml: the module its command runs}."""
    out = {}
    for name, spec in dvc_yaml["stages"].items():
        cmd = (spec.get("do") or spec)["cmd"]
        words = cmd.split()
        out[name] = words[words.index("-m") + 1]
    return out


def is_code(dep: str) -> bool:
    return dep.startswith(CODE_ROOTS)


def rewritten(text: str, wanted: dict) -> str:
    """dvc.yaml's text with each stage's code dependency lines replaced by wanted[stage], in place
    of the first of them; every other line (comments, data deps) kept."""
    out, stage, in_deps, written = [], None, False, False
    for line in text.splitlines(keepends=True):
        top = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
        if top:
            stage, in_deps, written = top.group(1), False, False
        if stage and re.match(r"^\s+deps:\s*$", line):
            in_deps, indent = True, None
            out.append(line)
            continue
        item = re.match(r"^(\s+)- (\S+)\s*$", line)
        if in_deps and item:
            if is_code(item.group(2)):
                if not written:
                    out += [f"{item.group(1)}- {f}\n" for f in sorted(wanted[stage])]
                    written = True
                continue
        elif in_deps and line.strip() and not line.strip().startswith("#"):
            in_deps = False
        out.append(line)
    return "".join(out)


def main() -> None:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite dvc.yaml")
    a = ap.parse_args()
    path = ROOT / "dvc.yaml"
    text = path.read_text()
    spec = yaml.safe_load(text)
    wanted = {name: project_files(module) for name, module in stage_modules(spec).items()}
    differ = []
    for name, s in spec["stages"].items():
        declared = {d for d in (s.get("do") or s).get("deps", []) if is_code(d)}
        if declared != wanted[name]:
            differ.append(name)
            print(f"{name}: missing {sorted(wanted[name] - declared)}, superfluous {sorted(declared - wanted[name])}")
    if differ and a.write:
        path.write_text(rewritten(text, wanted))
        print(f"dvc.yaml: {len(differ)} stage(s) rewritten")
    sys.exit(1 if differ and not a.write else 0)


if __name__ == "__main__":
    main()
