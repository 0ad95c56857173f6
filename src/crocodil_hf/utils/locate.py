"""Where a pipeline comes from, decided in one place: `locate_pipeline(name_or_path, revision=None) -> Path`.

A pipeline is named by a directory written by `crocodil assemble` / `save_pretrained`, by the name of a pipeline
shipped inside the package (`crocodil-python-tiny`), or by a Hub id `org/name` (downloaded once with
`huggingface_hub.snapshot_download`, the cache reused after). `CrocodilPipeline.from_pretrained`, every CLI command and
`crocodil train --init_from` call it.
"""

import os
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def default_cache_dir() -> Path:
    """The package's cache: `$CROCODIL_CACHE`, else `$XDG_CACHE_HOME/crocodil_hf` (`~/.cache/crocodil_hf`)."""
    root = os.environ.get("CROCODIL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "crocodil_hf"
    )
    return Path(root)


def shipped_pipelines() -> list[str]:
    """Names of the pipelines shipped inside the package (`crocodil generate --pipeline NAME`)."""
    return sorted(p.parent.name for p in SHIPPED_DIR.glob("*/model_index.json"))


def looks_local(name: str) -> bool:
    """Whether a name that does not exist is meant as a local path rather than a Hub id (`name` or `org/name`)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def locate_pipeline(name_or_path, revision: str | None = None, **hub_kwargs) -> Path:
    """The local directory of a pipeline: an existing directory with a `model_index.json`, a shipped pipeline (a
    local directory of the same name wins), or the snapshot of a Hub repository `org/name` at `revision`
    (`hub_kwargs`, e.g. `cache_dir`, `token`, `local_files_only`, go to `snapshot_download`). Names that are neither
    are refused before anything is downloaded or loaded.

    Example:
        ```python
        >>> locate_pipeline("crocodil-python-tiny").name
        'crocodil-python-tiny'
        ```
    """
    allowed = (
        f"expected a directory written by `crocodil assemble`, a shipped pipeline ({', '.join(shipped_pipelines())}) "
        "or a Hub id org/name"
    )
    name = str(name_or_path)
    if not name.strip():
        raise ValueError(f"the pipeline name is empty; {allowed}.")
    path = Path(name).expanduser()
    if not path.exists() and "/" not in name and (SHIPPED_DIR / name / "model_index.json").is_file():
        path = SHIPPED_DIR / name
    elif not path.exists():
        if looks_local(name) or name.count("/") != 1 or not all(name.split("/")):
            raise ValueError(f"{name} does not exist; {allowed}.")
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(name, revision=revision, **hub_kwargs))
    if not path.is_dir():
        raise ValueError(f"{name} is a file, not a pipeline directory; {allowed}.")
    if not (path / "model_index.json").is_file():
        raise ValueError(f"{name} is not a pipeline directory (it has no model_index.json); {allowed}.")
    return path


__all__ = ["SHIPPED_DIR", "locate_pipeline", "looks_local", "shipped_pipelines"]
