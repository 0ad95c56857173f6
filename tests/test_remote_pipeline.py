"""The whole pipeline from the Hub without the package: `DiffusionPipeline.from_pretrained(repo,
trust_remote_code=True)` in a process where crocodil_hf cannot be imported (tests/remote_pipeline_worker.py) gives
the installed package's tokens and NFE; its code is the package source byte for byte; with the package installed,
`CrocodilPipeline.from_pretrained` runs none of it; a pinned revision loads the old code and weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crocodil_hf import CrocodilPipeline
from crocodil_hf.pipelines.remote_code import pipeline_files
from crocodil_hf.testing import build_tiny_pipeline

pytest.importorskip("olah")

HERE = Path(__file__).resolve().parent
PACKAGE = Path(__import__("crocodil_hf").__file__).resolve().parent
PROGRAM = "def add(a, b):\n    return a + b\n"
CALLS = [
    {"mode": "con_within_disc", "num_samples": 2, "steps": 8, "seed": 0},
    {"mode": "con_then_disc", "num_samples": 2, "steps": 8, "seed": 10},
    {"mode": "mdm", "num_samples": 2, "steps": 8, "temperature": 1.0, "seed": 20},
    {"mode": "autoencode", "text": [PROGRAM, "x = [i * i for i in range(10)]\n"], "steps": 8, "seed": 30},
    {"mode": "con_within_disc", "prompt": "import os\n\n\ndef main():\n", "gen_length": 16, "steps": 8,
     "num_samples": 2, "seed": 40},
    {"mode": "con_within_disc", "prompt": "def add(a, b):\n", "suffix": "\nprint(add(1, 2))\n", "gen_length": 16,
     "steps": 8, "num_samples": 1, "seed": 50},
    {"mode": "con_within_disc", "num_samples": 2, "block_length": 16, "steps": 16, "kv_cache": "dual", "seed": 60},
]  # fmt: skip


@pytest.fixture(scope="module")
def hub():
    from hub_server import HubServer

    server = HubServer(port=int(os.environ["CROCODIL_TEST_HUB_PORT"])).start()
    yield server
    server.stop()


def run_calls(pipe, calls) -> list[dict]:
    """What the worker reports, computed with the installed package."""
    results = []
    for call in calls:
        call = dict(call)
        seed, n = call.pop("seed"), call.get("num_samples", len(call.get("text") or [None]))
        out = pipe(generator=[torch.Generator().manual_seed(seed + i) for i in range(n)], **call)
        results.append({"texts": out.texts, "full_texts": out.full_texts, "nfe": out.nfe})
    return results


def without_crocodil_hf(tmp_path, repo: str, calls, revision: str = "-", trust: bool = True) -> dict:
    """The worker's report, from a fresh process with empty module and Hub caches (everything from the server)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    out = tmp_path / "out.json"
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_CACHE=str(tmp_path / "hub"))
    argv = [str(tmp_path / "calls.json"), str(out)] + ([] if trust else ["--no-trust"])
    result = subprocess.run(
        [sys.executable, str(HERE / "remote_pipeline_worker.py"), repo, revision, *argv],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def shipped_repo(hub, tmp_path_factory):
    """The shipped pipeline pushed with `crocodil push`, as a user publishes one."""
    import shutil

    from crocodil_hf.cli import main
    from crocodil_hf.utils.locate import SHIPPED_DIR

    folder = tmp_path_factory.mktemp("shipped") / "crocodil-python-tiny"
    shutil.copytree(SHIPPED_DIR / "crocodil-python-tiny", folder)
    assert main(["push", str(folder), "org/crocodil-remote"]) == 0
    return "org/crocodil-remote"


def test_a_process_without_the_package_reproduces_its_tokens_and_nfe(shipped_repo, tmp_path):
    report = without_crocodil_hf(tmp_path, shipped_repo, CALLS)
    assert report["crocodil_hf_imported"] is False
    assert all(module.startswith("diffusers_modules.") for name, module in report["classes"].items()
               if name not in ("tokenizer", "scheduler")), report["classes"]  # fmt: skip
    installed = CrocodilPipeline.from_pretrained(shipped_repo)
    installed.set_progress_bar_config(disable=True)
    expected = run_calls(installed, CALLS)
    for call, got, want in zip(CALLS, report["results"], expected):
        assert got == want, call["mode"]


def test_without_trust_remote_code_diffusers_refuses_with_its_own_message(shipped_repo, tmp_path):
    report = without_crocodil_hf(tmp_path, shipped_repo, [], trust=False)
    assert "trust_remote_code=True" in report["error"] and "pipeline_crocodil.py" in report["error"]


def test_pushed_code_is_the_package_source_byte_for_byte(shipped_repo, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download

    sources = {}
    for path in PACKAGE.rglob("*.py"):
        sources.setdefault(path.name, []).append(path)
    files = [f for f in HfApi().list_repo_files(shipped_repo) if f.endswith(".py")]
    assert set(pipeline_files()) <= set(files)  # the whole pipeline's code, flat at the root
    assert {"demasker/remote_components.py", "prior/remote_components.py",
            "mask_scheduler/scheduling_masked_diffusion.py"} <= set(files)  # fmt: skip
    for name in files:
        (source,) = sources[Path(name).name]  # one package file of that name
        downloaded = hf_hub_download(shipped_repo, name, cache_dir=tmp_path)
        assert Path(downloaded).read_bytes() == source.read_bytes(), name
    index = json.loads(Path(hf_hub_download(shipped_repo, "model_index.json", cache_dir=tmp_path)).read_text())
    assert index["_class_name"] == ["pipeline_crocodil", "CrocodilPipeline"]
    assert index["demasker"] == ["remote_components", "GuidedLLaDAForMaskedLM"]


def test_diffusers_finds_every_file_it_imports():
    """diffusers copies the files an entry module imports relatively (one level for a local folder, recursively from
    the Hub): the pipeline module names every file of the pipeline's code, and every relative import of every file
    names one of them (an import across the package's folders, `from ..x`, would name none)."""
    from diffusers.utils.dynamic_modules_utils import get_relative_imports

    files = pipeline_files()
    assert set(get_relative_imports(str(files["pipeline_crocodil.py"]))) == {Path(n).stem for n in files} - {
        "pipeline_crocodil"
    }
    for name, source in files.items():
        assert {f"{m}.py" for m in get_relative_imports(str(source))} <= set(files), name


def test_the_installed_package_loads_a_remote_code_repo_with_its_own_classes(shipped_repo):
    before = {m for m in sys.modules if m.startswith("diffusers_modules")}
    pipe = CrocodilPipeline.from_pretrained(shipped_repo)
    assert type(pipe) is CrocodilPipeline
    assert all(type(c).__module__.split(".")[0] in ("crocodil_hf", "diffusers", "transformers", "tokenizers")
               for c in pipe.components.values() if c is not None)  # fmt: skip
    assert {m for m in sys.modules if m.startswith("diffusers_modules")} == before  # no remote code ran
    assert CrocodilPipeline.from_configs(shipped_repo).validate("con_within_disc", steps=8).steps == 8


def test_a_pinned_revision_loads_the_old_code_and_weights(hub, tmp_path):
    from huggingface_hub import HfApi

    api, repo, calls = HfApi(), "org/crocodil-remote-versions", [dict(CALLS[0], gen_length=16, prior_steps=3)]
    outputs = []
    for seed in (0, 1):
        pipe = build_tiny_pipeline(seed=seed)
        pipe.set_progress_bar_config(disable=True)
        pipe.push_to_hub(repo, commit_message=f"v{seed + 1}")
        outputs.append(run_calls(pipe, calls))
        if seed == 0:
            sha_v1 = api.model_info(repo).sha
    code = (PACKAGE / "pipelines" / "pipeline_crocodil.py").read_bytes() + b'\nREMOTE_CODE_MARKER = "v2"\n'
    api.upload_file(path_or_fileobj=code, path_in_repo="pipeline_crocodil.py", repo_id=repo, commit_message="code v2")
    old = without_crocodil_hf(tmp_path / "old", repo, calls, revision=sha_v1)
    new = without_crocodil_hf(tmp_path / "new", repo, calls)
    assert old["marker"] is None and old["results"] == outputs[0]
    assert new["marker"] == "v2" and new["results"] == outputs[1] != outputs[0]


def test_the_relative_imports_of_the_pipeline_code_have_no_cycle():
    """diffusers follows a Hub repository's relative imports recursively without remembering the files it fetched:
    a cycle (even under `if TYPE_CHECKING:`) never ends."""
    from diffusers.utils.dynamic_modules_utils import get_relative_imports

    graph = {Path(n).stem: set(get_relative_imports(str(p))) for n, p in pipeline_files().items()}
    done, active = set(), []

    def visit(module):
        assert module not in active, " -> ".join([*active, module])
        if module not in done:
            active.append(module)
            for imported in sorted(graph[module]):
                visit(imported)
            active.pop()
            done.add(module)

    visit("pipeline_crocodil")
