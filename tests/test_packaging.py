"""The package, its CLI and its documentation agree with each other."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_test_command_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    block = re.search(r"Run the tests.*?```bash\n(.+?)\n```", readme, re.S)
    assert block, "README.md must show the test command in a bash block after 'Run the tests'"
    command = block.group(1).strip()
    assert command in [line.strip() for line in ci.splitlines()]


def test_public_api_is_importable():
    import crocodil_hf

    for name in crocodil_hf.__all__:
        assert hasattr(crocodil_hf, name), name


def test_cli_help_exits_zero():
    result = subprocess.run(
        [sys.executable, "-m", "crocodil_hf.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "crocodil" in result.stdout


def test_remote_code_files_import_only_torch_transformers_and_siblings():
    allowed = ("torch", "transformers", "math", "dataclasses", "collections", "contextlib", "typing", "__future__")
    for path in (ROOT / "src" / "crocodil_hf" / "modeling").glob("*_*.py"):
        if "register_prior" in path.name:
            continue  # diffusers model, not transformers remote code
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:from|import)\s+([\w.]+)", line)
            if not match or match.group(1).startswith("."):
                continue
            assert match.group(1).split(".")[0] in allowed, f"{path.name}: {line.strip()}"


def test_code_is_ruff_clean():
    import shutil

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "src", "tests"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


def test_no_code_is_shipped_and_saved_remote_code_equals_the_package_source(tmp_path):
    from crocodil_hf.pipelines.remote_code import MODELING_DIR, remote_code_files
    from crocodil_hf.testing import build_tiny_pipeline
    from crocodil_hf.utils.locate import SHIPPED_DIR

    assert not list(SHIPPED_DIR.rglob("*.py"))
    build_tiny_pipeline().save_pretrained(tmp_path)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py"))
    assert written and written == sorted(remote_code_files(tmp_path))  # what push adds is what save writes
    for name in written:
        assert (tmp_path / name).read_bytes() == (MODELING_DIR / Path(name).name).read_bytes(), name
