"""How a `CrocodilPipeline` is loaded and saved: `from_pretrained` (checked and with corrupt weights named),
`from_configs` (the pipeline a saved one describes, its models on the meta device: what `validate` needs before any
weights load), `save_pretrained` (with the models' remote code at the top level, and with `remote_code=True` the
whole pipeline's) and `push_to_hub` (always with the pipeline's remote code: `pipelines/remote_code.py`)."""

import importlib
import json
from pathlib import Path

import torch
from diffusers import ModelMixin
from transformers import PreTrainedModel

from .components import check_model_index

INSTALLED = __package__.startswith("crocodil_hf")  # False when this file runs as a pipeline's remote code

if INSTALLED:
    from crocodil_hf.utils.locate import locate_pipeline
else:  # a pipeline's remote code (pipelines/remote_code.py): the package's files side by side in one folder
    from .locate import locate_pipeline


def package_index(index: dict) -> dict:
    """A saved `model_index.json` as the installed package reads it (`remote_code.package_index`: a pipeline saved
    with its remote code names the package's own classes); unchanged when this file runs as remote code."""
    if not INSTALLED:
        return index
    from crocodil_hf.pipelines.remote_code import package_index as as_package  # absolute: never remote code

    return as_package(index)


def _component_from_config(folder: Path, library: str, class_name: str):
    """One saved component without its weights: a model built from its config on the meta device, a scheduler or
    tokenizer loaded as usual (they are configs)."""
    module = importlib.import_module(library)
    component_class = getattr(module, class_name)
    if issubclass(component_class, PreTrainedModel):
        config = component_class.config_class.from_pretrained(folder)
        with torch.device("meta"):
            return component_class(config)
    if issubclass(component_class, ModelMixin):
        with torch.device("meta"):
            return component_class.from_config(component_class.load_config(folder))
    return component_class.from_pretrained(folder)


class PipelineLoading:
    """The loading and saving half of `CrocodilPipeline` (mixed in before `DiffusionPipeline`). It does not import
    the pipeline module, even for annotations: diffusers fetches a pipeline's remote code by following its relative
    imports, and a cycle would never end."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved pipeline: a directory, a shipped name (`"crocodil-python-tiny"`) or a Hub id `org/name`
        (`revision=`, `cache_dir=`, `token=`, `local_files_only=` pick and fetch the snapshot), found by
        `locate_pipeline`. The saved `model_index.json` is checked before anything loads, and a corrupt weights file
        is named."""
        hub = {k: kwargs.pop(k) for k in ("cache_dir", "token", "local_files_only", "force_download") if k in kwargs}
        source = locate_pipeline(pretrained_model_name_or_path, revision=kwargs.pop("revision", None), **hub)
        check_model_index(source)
        try:
            return super().from_pretrained(source, **kwargs)
        except Exception as err:
            if type(err).__name__ != "SafetensorError":
                raise
            from safetensors import safe_open

            for path in sorted(source.rglob("*.safetensors")):
                try:
                    with safe_open(str(path), "pt"):
                        pass
                except Exception:  # noqa: BLE001  (any failure to open is the answer)
                    raise ValueError(f"{path} is corrupt or truncated ({err}); re-download or re-save it.") from err
            raise

    @classmethod
    def load_config(cls, *args, **kwargs):
        """diffusers' `load_config`, with a remote-code index read as the package's classes (`package_index`)."""
        loaded = super().load_config(*args, **kwargs)
        if isinstance(loaded, tuple):
            return (package_index(loaded[0]), *loaded[1:])
        return package_index(loaded)

    @classmethod
    def from_configs(cls, pretrained_model_name_or_path, **hub_kwargs):
        """The pipeline a saved one describes, built from its configs and tokenizers with every model on the meta
        device (no weights read): what `validate` needs, in a fraction of a second, so a bad call is refused before
        the weights load. It cannot generate.

        Example:
            ```python
            >>> skeleton = CrocodilPipeline.from_configs("crocodil-python-tiny")
            >>> skeleton.validate("con_within_disc", num_registers=99)
            Traceback (most recent call last):
            ValueError: `num_registers` must be an integer >= 1 and <= 16, got 99.
            ```
        """
        source = locate_pipeline(pretrained_model_name_or_path, **hub_kwargs)
        check_model_index(source)
        index = package_index(json.loads((source / "model_index.json").read_text()))
        components, settings = {}, {}
        for name, value in index.items():
            if name.startswith("_"):
                continue
            if not isinstance(value, list):
                settings[name] = value
            elif value[1] is not None:
                components[name] = _component_from_config(source / name, *value)
        return cls(**components, **settings)

    def save_pretrained(self, save_directory, *args, remote_code: bool = False, **kwargs):
        """`DiffusionPipeline.save_pretrained`, plus a copy of the models' remote-code files at the top level.

        transformers looks for the remote code of `AutoModel.from_pretrained(repo, subfolder=..., trust_remote_code=
        True)` at the repository root, not in the subfolder; the copies make each component loadable alone. With
        `remote_code=True`, the whole pipeline's code too (from the installed package source), and an index naming
        it: the folder then loads with `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)` where
        crocodil_hf is not installed (`push_to_hub` always writes it).

        Example:
            ```python
            >>> pipe.save_pretrained("my-pipeline", remote_code=True)
            >>> DiffusionPipeline.from_pretrained("my-pipeline", trust_remote_code=True)  # no crocodil_hf needed
            ```
        """
        import shutil

        super().save_pretrained(save_directory, *args, **kwargs)
        for name in ("demasker", "encoder"):
            for source in sorted(Path(save_directory, name).glob("*.py")):
                shutil.copy2(source, Path(save_directory, source.name))
        if remote_code or getattr(self, "_saving_remote_code", False):
            from crocodil_hf.pipelines.remote_code import write_remote_code  # the installed package's source

            write_remote_code(save_directory, pipeline=True)

    def push_to_hub(self, repo_id: str, *args, **kwargs):
        """`DiffusionPipeline.push_to_hub`, with the pipeline's remote code (`save_pretrained(remote_code=True)`): the
        repository loads with `DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True)` without
        crocodil_hf, and with crocodil_hf installed `CrocodilPipeline.from_pretrained(repo_id)` runs none of it."""
        self._saving_remote_code = True
        try:
            return super().push_to_hub(repo_id, *args, **kwargs)
        finally:
            del self._saving_remote_code
