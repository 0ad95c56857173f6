"""The house rules of docs/architecture.md, checked on the source: the layer table, file and function sizes, the
pipeline's keyword-only call, the CLI as a package of one module per command."""

import ast
import inspect
from pathlib import Path

import crocodil_hf

ROOT = Path(crocodil_hf.__file__).parent
# package -> floor; a module may import only from its own floor or below (docs/architecture.md, "Layers")
LAYERS = {
    "utils": 0,
    "modeling": 1,
    "_registration": 1,
    "schedulers": 2,
    "pipelines": 3,
    "data": 3,
    "training": 4,
    "evaluation": 5,
    "testing": 5,
    "cli": 6,
    "demo": 6,
}


def sources():
    return sorted(p for p in ROOT.rglob("*.py") if "pretrained" not in p.parts)


def crocodil_imports(path: Path, root: Path = ROOT):
    """(line, imported top-level package of crocodil_hf) for every import of the package in `path`."""
    package = list(path.relative_to(root.parent).with_suffix("").parts)[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                module = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "crocodil_hf":
                module = node.module.split(".")
            else:
                continue
            targets = [module[1]] if len(module) > 1 else [alias.name for alias in node.names]
            for target in targets:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "crocodil_hf" and len(parts) > 1:
                    yield node.lineno, parts[1]


def floor(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return rel[0]


def test_every_module_imports_only_from_its_floor_or_below():
    wrong = []
    for path in sources():
        own = floor(path)
        if own == "__init__":
            continue  # the lazy public namespace
        assert own in LAYERS, f"{path}: package {own!r} has no floor in the layer table"
        for line, target in crocodil_imports(path):
            if target in LAYERS and target != own and LAYERS[target] > LAYERS[own]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_training_imports_nothing_from_pipelines():
    hits = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sources()
        if floor(path) == "training"
        for line, target in crocodil_imports(path)
        if target == "pipelines"
    ]
    assert not hits, hits


def code_lines(node, lines) -> int:
    first = node.body[0]
    doc = set()
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        doc = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for i in range(node.lineno, node.end_lineno + 1)
        if i not in doc and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#")
    )


def test_no_file_over_600_lines_and_no_function_over_80_lines_of_code():
    long_files = [f"{p.relative_to(ROOT)}: {n}" for p in sources() if (n := len(p.read_text().splitlines())) > 600]
    long_functions = []
    for path in sources():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(node, lines) > 80:
                long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long_files, long_files
    assert not long_functions, long_functions


# the conventions of transformers: a model's `forward` takes its inputs positionally, and an attention function has
# the signature transformers' `ALL_ATTENTION_FUNCTIONS` calls
POSITIONAL_CONVENTIONS = {"forward", "eager_attention_forward"}


def test_no_function_takes_more_than_six_positional_arguments():
    wrong = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in POSITIONAL_CONVENTIONS:
                positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(positional) > 6:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({len(positional)})")
    assert not wrong, wrong


def test_the_pipeline_call_is_keyword_only_after_mode():
    from crocodil_hf import CrocodilPipeline

    params = list(inspect.signature(CrocodilPipeline.__call__).parameters.values())
    assert [p.name for p in params[:2]] == ["self", "mode"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])


def test_the_cli_is_a_package_of_one_module_per_command():
    from crocodil_hf.cli import COMMANDS

    folder = ROOT / "cli" / "commands"
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    assert {name.replace("-", "_") for name in COMMANDS} == modules
    for name, module in COMMANDS.items():
        assert callable(module.register) and callable(module.run), name


def test_the_import_walk_sees_a_relative_import_across_floors(tmp_path):
    """So that the layer tests above can fail: a training module importing pipelines is seen as such."""
    bad = tmp_path / "crocodil_hf" / "training" / "stages" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from ...pipelines.pipeline_crocodil import CrocodilPipeline\nimport crocodil_hf.cli\n")
    assert list(crocodil_imports(bad, tmp_path / "crocodil_hf")) == [(1, "pipelines"), (2, "cli")]
