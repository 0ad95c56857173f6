"""How a `CrocodilPipeline` is loaded and saved: `from_pretrained` (checked and with corrupt weights named),
`from_configs` (the pipeline a saved one describes, its models on the meta device: what `validate` needs before any
weights load) and `save_pretrained` (with the models' remote code at the top level)."""

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers import ModelMixin
from transformers import PreTrainedModel

from ..utils.locate import locate_pipeline
from .components import check_model_index

if TYPE_CHECKING:
    from .pipeline_crocodil import CrocodilPipeline


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
    """The loading and saving half of `CrocodilPipeline` (mixed in before `DiffusionPipeline`)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "CrocodilPipeline":
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
    def from_configs(cls, pretrained_model_name_or_path, **hub_kwargs) -> "CrocodilPipeline":
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
        index = json.loads((source / "model_index.json").read_text())
        components, settings = {}, {}
        for name, value in index.items():
            if name.startswith("_"):
                continue
            if not isinstance(value, list):
                settings[name] = value
            elif value[1] is not None:
                components[name] = _component_from_config(source / name, *value)
        return cls(**components, **settings)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`DiffusionPipeline.save_pretrained`, plus a copy of the models' remote-code files at the top level.

        transformers looks for the remote code of `AutoModel.from_pretrained(repo, subfolder=..., trust_remote_code=
        True)` at the repository root, not in the subfolder; the copies make each component loadable alone.
        """
        import shutil

        super().save_pretrained(save_directory, *args, **kwargs)
        for name in ("demasker", "encoder"):
            for source in sorted(Path(save_directory, name).glob("*.py")):
                shutil.copy2(source, Path(save_directory, source.name))
