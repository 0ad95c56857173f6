"""The remote code of a saved folder, always taken from the installed package source.

Two uses, both with files byte-equal to the package's (nothing under `pretrained/` keeps copies):

- **Each transformers component alone.** `save_pretrained` writes the modeling files beside each transformers
  component (transformers' `custom_object_save`); `crocodil push` adds, for every `config.json` with an `auto_map`,
  the module files it names and their relative imports, so that `AutoModel.from_pretrained(repo, subfolder=...,
  trust_remote_code=True)` works without crocodil_hf.
- **The whole pipeline** (`write_remote_code(folder, pipeline=True)`: `crocodil push`, `push_to_hub`,
  `save_pretrained(..., remote_code=True)`). diffusers loads a pipeline class from a `.py` file at the repository
  root named by `model_index.json`'s `_class_name = [module, class]`, and a component class from `<component>/
  <module>.py` when the index names `[module, class]`. So the pipeline's code (`pipeline_files()`: the pipeline module
  and every package module it reaches) is written flat at the root, `modeling/remote_components.py` into each model
  component's folder (the mask scheduler's folder gets its own module), and the index names those modules instead
  of `crocodil_hf` (`remote_index`). A module that imports across the package's folders does it in two branches: absolute imports in
  the package, sibling imports (`from .numbers import ...`) in remote code. diffusers copies only the files the entry
  module imports, so `pipeline_crocodil.py`'s remote branch imports every file of `pipeline_files()` (tested).
  With crocodil_hf installed, `CrocodilPipeline.from_pretrained` reads such an index back as the package's own
  classes (`package_index`, the inverse of `remote_index`) and runs no remote code.

Example:
    ```python
    >>> from crocodil_hf.pipelines.remote_code import remote_code_files
    >>> files = remote_code_files("src/crocodil_hf/pretrained/crocodil-python-tiny")
    >>> sorted(files)[:2]
    ['configuration_crocodil.py', 'configuration_llada.py']
    ```
"""

import ast
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODELING_DIR = PACKAGE_DIR / "modeling"
PIPELINE_MODULE = PACKAGE_DIR / "pipelines" / "pipeline_crocodil.py"
# the module a pushed index names for every model component (see its docstring)
COMPONENTS_MODULE = MODELING_DIR / "remote_components.py"


def module_files(module: str) -> list[Path]:
    """The source file of a modeling module and every file it imports relatively (recursively)."""
    from transformers.dynamic_module_utils import get_relative_import_files

    source = MODELING_DIR / f"{module}.py"
    if not source.is_file():
        raise ValueError(f"auto_map names module {module!r}, which crocodil_hf.modeling does not have.")
    return sorted({source, *map(Path, get_relative_import_files(str(source)))})


def _module_level(body: list) -> list:
    """The statements a module runs when imported: its body and the branches of its top-level `if` / `try` blocks
    (an import inside a function is an optional feature, not the module's code)."""
    statements = []
    for node in body:
        statements.append(node)
        for branch in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try)):
                statements += _module_level(getattr(node, branch, []))
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                statements += _module_level(handler.body)
    return statements


def _imported_files(path: Path) -> set[Path]:
    """The package files a module imports when it is imported (relative, or `crocodil_hf.` absolute imports that
    resolve to a file)."""
    package = path.relative_to(PACKAGE_DIR.parent).parent.parts  # ("crocodil_hf", "pipelines")
    found = set()
    for node in _module_level(ast.parse(path.read_text(encoding="utf-8")).body):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            parts = list(package[: len(package) - node.level + 1]) + (node.module.split(".") if node.module else [])
        elif node.module and node.module.split(".")[0] == "crocodil_hf":
            parts = node.module.split(".")
        else:
            continue
        candidates = [parts] + [parts + [alias.name] for alias in node.names]
        for candidate in candidates:
            file = PACKAGE_DIR.parent.joinpath(*candidate).with_suffix(".py")
            if file.is_file() and file.name != "__init__.py":
                found.add(file)
    return found


def code_closure(entry: Path) -> list[Path]:
    """`entry` and every package file it reaches through imports, recursively (sibling imports of a remote-code
    branch resolve to nothing inside the package and are skipped)."""
    seen, todo = set(), [entry]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(_imported_files(file) - seen)
    return sorted(seen)


def pipeline_files() -> dict[str, Path]:
    """`{flat file name: package source}` of the pipeline's remote code; names are unique by construction."""
    files = {}
    for source in code_closure(PIPELINE_MODULE):
        if source.name in files:
            raise RuntimeError(f"two package modules are both named {source.name}; remote code needs unique names.")
        files[source.name] = source
    return files


def _component_module(class_name: str) -> Path | None:
    """The source file of a crocodil_hf component class (`None` for a name the package does not export)."""
    import crocodil_hf

    component = getattr(crocodil_hf, class_name, None) if class_name in crocodil_hf.__all__ else None
    if component is None:
        return None
    return PACKAGE_DIR.parent.joinpath(*component.__module__.split(".")).with_suffix(".py")


def _remote_module(source: Path) -> Path:
    """The module a pushed index names for a component class defined in `source`: `remote_components` for the
    models, the class's own (single-file) module otherwise (the mask scheduler, whose folder diffusers downloads
    whole)."""
    return COMPONENTS_MODULE if source.parent == MODELING_DIR else source


def _crocodil_component(spec) -> Path | None:
    """The remote-code module of a model-index entry that names a crocodil_hf class, as `["crocodil_hf", class]`, as
    its remote-code module or as the module that defines it (`[module, class]`); `None` for any other entry."""
    if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[1], str)):
        return None
    source = _component_module(spec[1])
    if source is None:
        return None
    remote = _remote_module(source)
    return remote if spec[0] in ("crocodil_hf", remote.stem, source.stem) else None


def remote_index(index: dict) -> dict:
    """A `model_index.json` whose crocodil_hf entries name the remote-code modules: `_class_name` becomes
    `["pipeline_crocodil", "CrocodilPipeline"]`, a component `["crocodil_hf", "GuidedLLaDAForMaskedLM"]` becomes
    `["remote_components", "GuidedLLaDAForMaskedLM"]` (`modeling/remote_components.py`)."""
    index = dict(index)
    if isinstance(index.get("_class_name"), str):
        index["_class_name"] = [PIPELINE_MODULE.stem, index["_class_name"]]
    for name, spec in index.items():
        if isinstance(spec, list) and len(spec) == 2 and spec[0] == "crocodil_hf":
            index[name] = [_remote_module(_component_module(spec[1])).stem, spec[1]]
    return index


def package_index(index: dict) -> dict:
    """The inverse of `remote_index`, as the installed package reads a saved index: entries that name a crocodil_hf
    class by a module (`["remote_components", "GuidedLLaDAForMaskedLM"]`, `_class_name` `["pipeline_crocodil",
    "CrocodilPipeline"]`) name the package's own classes (`["crocodil_hf", ...]`, `"CrocodilPipeline"`), so that
    loading with crocodil_hf installed runs no remote code (`CrocodilPipeline.load_config`)."""
    index = dict(index)
    name = index.get("_class_name")
    if isinstance(name, list) and len(name) == 2 and name[0] == PIPELINE_MODULE.stem:
        if _component_module(name[1]) == PIPELINE_MODULE:
            index["_class_name"] = name[1]
    for key, spec in index.items():
        if not key.startswith("_") and _crocodil_component(spec) is not None:
            index[key] = ["crocodil_hf", spec[1]]
    return index


def remote_index_text(folder: str | Path) -> str:
    """The `model_index.json` of a saved pipeline as its remote code needs it (`remote_index`), as written."""
    index = json.loads(Path(folder, "model_index.json").read_text())
    return json.dumps(remote_index(index), indent=2, sort_keys=True) + "\n"


def remote_code_files(folder: str | Path, pipeline: bool = False) -> dict[str, Path]:
    """`{path in the folder: package source file}` of the remote code a saved folder needs: beside each config with
    an `auto_map`, and at the top of a pipeline (transformers looks for a subfolder's remote code at the root); with
    `pipeline`, also the pipeline's code at the root and each crocodil_hf component's module in its folder."""
    folder = Path(folder)
    files: dict[str, Path] = {}
    for config in sorted(folder.rglob("config.json")):
        try:
            auto_map = json.loads(config.read_text()).get("auto_map") or {}
        except (OSError, ValueError):
            continue
        prefix = config.parent.relative_to(folder)
        for reference in auto_map.values():
            reference = reference[0] if isinstance(reference, list) else reference
            if not isinstance(reference, str) or "--" in reference:
                continue  # a reference to another repository's code
            for source in module_files(reference.split(".")[0]):
                files[(prefix / source.name).as_posix()] = source
                if (folder / "model_index.json").is_file() and prefix != Path("."):
                    files[source.name] = source
    if pipeline:
        files.update(pipeline_files())
        index = json.loads((folder / "model_index.json").read_text())
        for name, spec in index.items():
            component = None if name.startswith("_") else _crocodil_component(spec)
            if component is None:
                continue
            # remote_components.py alone: it finds the modeling files at the root (see its docstring)
            for source in [component] if component == COMPONENTS_MODULE else code_closure(component):
                files[f"{name}/{source.name}"] = source
    return files


def write_remote_code(folder: str | Path, pipeline: bool = False) -> list[str]:
    """Write (or refresh) the remote code of a saved folder from the package source; with `pipeline`, the whole
    pipeline's, and `model_index.json` rewritten to name it (`remote_index`). Returns the paths written."""
    written = []
    for name, source in remote_code_files(folder, pipeline=pipeline).items():
        target = Path(folder, name)
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            target.write_bytes(source.read_bytes())
            written.append(name)
    if pipeline:
        Path(folder, "model_index.json").write_text(remote_index_text(folder))
        written.append("model_index.json")
    return written


__all__ = [
    "MODELING_DIR", "code_closure", "module_files", "package_index", "pipeline_files", "remote_code_files",
    "remote_index", "remote_index_text", "write_remote_code",
]  # fmt: skip
