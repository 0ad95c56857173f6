"""The remote code of a saved folder, always taken from the installed package source.

`save_pretrained` writes the modeling files beside each transformers component (transformers' `custom_object_save`);
nothing under `pretrained/` keeps copies. `crocodil push` adds, for every `config.json` with an `auto_map`, the module
files it names and their relative imports, read from `crocodil_hf/modeling/` at push time, so that a component loads
with `trust_remote_code=True` alone, from code equal to the package's.

Example:
    ```python
    >>> files = remote_code_files("src/crocodil_hf/pretrained/crocodil-python-tiny")
    >>> sorted(files)[:2]
    ['configuration_crocodil.py', 'configuration_llada.py']
    ```
"""

import json
from pathlib import Path

MODELING_DIR = Path(__file__).resolve().parent / "modeling"


def module_files(module: str) -> list[Path]:
    """The source file of a modeling module and every file it imports relatively (recursively)."""
    from transformers.dynamic_module_utils import get_relative_import_files

    source = MODELING_DIR / f"{module}.py"
    if not source.is_file():
        raise ValueError(f"auto_map names module {module!r}, which crocodil_hf.modeling does not have.")
    return sorted({source, *map(Path, get_relative_import_files(str(source)))})


def remote_code_files(folder: str | Path) -> dict[str, Path]:
    """`{path in the folder: package source file}` of the remote code a saved folder needs: beside each config with
    an `auto_map`, and at the top of a pipeline (transformers looks for a subfolder's remote code at the root)."""
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
    return files


def write_remote_code(folder: str | Path) -> list[str]:
    """Write (or refresh) the remote code of a saved folder from the package source; returns the paths written."""
    written = []
    for name, source in remote_code_files(folder).items():
        target = Path(folder, name)
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            target.write_bytes(source.read_bytes())
            written.append(name)
    return written


__all__ = ["MODELING_DIR", "module_files", "remote_code_files", "write_remote_code"]
