"""`scripts/ship_tiny_model.py`: installs a trained pipeline with its cumulative training history, a card that adds
the runs up, and half-precision weights that load back as float32 (run on a tiny pipeline into a temporary folder)."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from crocodil_hf import CrocodilPipeline
from crocodil_hf.testing import build_tiny_pipeline

ROOT = Path(__file__).resolve().parents[1]


def _stage(folder: Path, stage: str, minutes: float, cpu_seconds: float | None, init_from: str | None) -> None:
    folder.mkdir(parents=True)
    record = {"stage": stage, "metrics": {"train_runtime": 60 * minutes, "train_loss": 1.5}, "steps": 10,
              "num_processes": 1, "init_from": init_from}  # fmt: skip
    if cpu_seconds is not None:
        record["cpu_seconds"] = cpu_seconds
    (folder / "training_complete.json").write_text(json.dumps(record))


def test_a_continuation_ships_with_its_added_up_history_and_float16_weights(tmp_path):
    previous = tmp_path / "previous"
    build_tiny_pipeline().save_pretrained(previous)
    first = {"date": "2026-01-01", "script": "scripts/train_tiny_python.sh", "init_from": None, "wall_minutes": 60,
             "cpu_minutes": 120, "stages": {"mdm": {"steps": 5, "wall_minutes": 60, "cpu_minutes": None}}}  # fmt: skip
    (previous / "training_history.json").write_text(json.dumps([first]))
    pipe = build_tiny_pipeline(seed=1)
    pipe.save_pretrained(tmp_path / "run" / "pipeline")
    _stage(tmp_path / "run" / "autoencoder", "autoencoder", 30, 3000.0, str(previous))
    _stage(tmp_path / "run" / "prior", "prior", 6, None, str(previous))  # an older record: CPU time given by hand
    point = {"mode": "autoencode", "block_length": 16, "steps": 4, "nfe": {"total": 4.5},
             "metrics": {"cer": 0.5, "gen_ppl": 90.0, "entropy": 2.5}}  # fmt: skip
    mdm = {"mode": "mdm", "block_length": 16, "steps": 4, "nfe": {"total": 4.0},
           "metrics": {"gen_ppl": 9e4, "entropy": 1.1, "mauve": 0.004}}  # fmt: skip
    sweep = {"scorer": "s", "config": {"gen_length": 16, "modes": ["mdm", "autoencode"], "num_samples": 2,
                                       "temperature": 0.0, "prior": "dpmsolver++, 16 steps", "call_kwargs": {}},
             "points": [mdm, point],
             "command": f"crocodil eval --pipeline {tmp_path / 'run' / 'pipeline'} --modes mdm,autoencode"}  # fmt: skip
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    target = tmp_path / "shipped"
    command = [sys.executable, str(ROOT / "scripts" / "ship_tiny_model.py"), "--pipeline", str(tmp_path / "run" / "pipeline"),
               "--runs", str(tmp_path / "run"), "--script", "scripts/continue_tiny_python.sh", "--sweep",
               str(tmp_path / "sweep.json"), "--cpu-seconds", "prior=720", "--target", str(target)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]

    history = json.loads((target / "training_history.json").read_text())
    assert history[0] == first and len(history) == 2
    assert history[1]["init_from"] == str(previous)
    assert history[1]["stages"]["autoencoder"]["cpu_minutes"] == 50.0
    assert history[1]["stages"]["prior"]["cpu_minutes"] == 12.0
    card = (target / "README.md").read_text()
    assert "3.0 CPU-hours" in card  # 120 + 50 + 12 = 182 CPU-minutes
    # the evaluation states a command that runs on the shipped name, how every point sampled, and what greedy MDM does
    assert "Measured with `crocodil eval --pipeline crocodil-python-tiny --modes mdm,autoencode`" in card
    assert "Sampling: temperature 0 (greedy), low_confidence remasking; priors: dpmsolver++, 16 steps." in card
    assert "Greedy plain MDM (the `mdm` rows, entropy 1.10) collapses" in card
    assert json.loads(result.stdout)["training_cpu_hours"] == round(182 / 60, 2)
    assert not (ROOT / "model_cards" / "shipped.md").exists()
    # shipping the same run again (here: continuing the shipped folder itself) replaces its entry, not adds one
    for stage in ("autoencoder", "prior"):
        record = json.loads((tmp_path / "run" / stage / "training_complete.json").read_text())
        (tmp_path / "run" / stage / "training_complete.json").write_text(
            json.dumps({**record, "init_from": str(target)})
        )
    assert subprocess.run(command, capture_output=True, text=True, cwd=tmp_path).returncode == 0
    again = json.loads((target / "training_history.json").read_text())
    assert len(again) == 2 and again[1]["init_from"] == str(target) and again[1]["stages"] == history[1]["stages"]
    # a stage added to a shipped run (the plain-MDM baseline) ships that run again, now with the stage: no new entry
    _stage(tmp_path / "run" / "mdm-baseline", "mdm", 20, 1200.0, None)
    assert subprocess.run(command, capture_output=True, text=True, cwd=tmp_path).returncode == 0
    third = json.loads((target / "training_history.json").read_text())
    assert len(third) == 2 and third[1]["stages"]["mdm-baseline"]["cpu_minutes"] == 20.0
    assert all(third[1]["stages"][name] == stage for name, stage in history[1]["stages"].items())
    card = (target / "README.md").read_text()
    assert "3.4 CPU-hours" in card and "plain-MDM baseline" in card  # 182 + 20 CPU-minutes

    for weights in target.glob("*/*.safetensors"):
        with safe_open(str(weights), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F16", "I64", "BOOL"}, weights
    loaded = CrocodilPipeline.from_pretrained(target)
    for name in ("demasker", "encoder", "prior", "conditional_prior"):
        stored, original = getattr(loaded, name).state_dict(), getattr(pipe, name).state_dict()
        assert all(t.dtype == torch.float32 for t in stored.values() if t.is_floating_point()), name
        # the encoder's LLaDA output head never runs (registers come from hidden states): it is not shipped
        dropped = {"backbone.model.transformer.ff_out.weight"} if name == "encoder" else set()
        assert set(original) - set(stored) == dropped and set(stored) <= set(original), name
        assert all(
            torch.equal(stored[k], original[k].half().float()) for k in stored if original[k].is_floating_point()
        )
    assert (
        loaded.encoder.config.backbone_config.weight_tying
        and pipe.encoder.backbone.get_output_embeddings() is not None
    )
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():  # same registers as the float16-rounded encoder with its head
        half = type(pipe.encoder)(pipe.encoder.config).eval()
        half.load_state_dict(
            {k: v.half().float() if v.is_floating_point() else v for k, v in pipe.encoder.state_dict().items()}
        )
        assert torch.equal(loaded.encoder(ids).registers, half(ids).registers)


def test_a_continuation_of_a_pipeline_without_history_is_refused_before_anything_is_written(tmp_path):
    previous = tmp_path / "previous"
    build_tiny_pipeline().save_pretrained(previous)
    build_tiny_pipeline(seed=1).save_pretrained(tmp_path / "run" / "pipeline")
    _stage(tmp_path / "run" / "autoencoder", "autoencoder", 30, 3000.0, str(previous))
    point = {"mode": "autoencode", "block_length": 16, "steps": 4, "nfe": {"total": 4.5}, "metrics": {"cer": 0.5}}
    (tmp_path / "sweep.json").write_text(json.dumps({"scorer": "s", "config": {"gen_length": 16, "modes": []},
                                                     "points": [point]}))  # fmt: skip
    target = tmp_path / "shipped"
    target.mkdir()
    (target / "keep.txt").write_text("the shipped model")
    command = [sys.executable, str(ROOT / "scripts" / "ship_tiny_model.py"), "--pipeline", str(tmp_path / "run" / "pipeline"),
               "--runs", str(tmp_path / "run"), "--sweep", str(tmp_path / "sweep.json"), "--target", str(target)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "has no training_history.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert (target / "keep.txt").read_text() == "the shipped model"


def _cer_sweep(path: Path, pipeline: Path, cer: float, references: str = "128 validation programs of X") -> str:
    point = {"mode": "autoencode", "block_length": 16, "steps": 4, "nfe": {"total": 4.5},
             "metrics": {"cer": cer, "num_samples": 2, "gen_ppl": 90.0, "entropy": 2.5}}  # fmt: skip
    sweep = {"scorer": "s", "config": {"gen_length": 16, "modes": ["autoencode"], "num_samples": 2},
             "references": {"description": references}, "points": [point], "pipeline": str(pipeline),
             "command": f"crocodil eval --pipeline {pipeline} --modes autoencode --steps 4 --no-mauve"}  # fmt: skip
    path.write_text(json.dumps(sweep))
    return str(path)


def test_a_continuation_whose_cer_did_not_improve_is_not_shipped(tmp_path):
    """Cumulative training ships a run only when its autoencoding CER beats the run it continued on the same programs;
    the CERs are recorded in the history and stated on the card."""
    previous = tmp_path / "previous"
    build_tiny_pipeline().save_pretrained(previous)
    first = {"date": "2026-01-01", "script": "scripts/train_tiny_python.sh", "init_from": None, "wall_minutes": 60,
             "cpu_minutes": 120, "stages": {"mdm": {"steps": 5}},
             "cer": {"128 validation programs of X": {"cer": 0.6, "steps": 4, "num_samples": 2}}}  # fmt: skip
    (previous / "training_history.json").write_text(json.dumps([first]))
    run = tmp_path / "run"
    build_tiny_pipeline(seed=1).save_pretrained(run / "pipeline")
    _stage(run / "autoencoder", "autoencoder", 30, 3000.0, str(previous))
    sweep = _cer_sweep(tmp_path / "sweep.json", run / "pipeline", 0.5)
    target = tmp_path / "shipped"
    target.mkdir()
    (target / "keep.txt").write_text("the shipped model")
    command = [sys.executable, str(ROOT / "scripts" / "ship_tiny_model.py"), "--pipeline", str(run / "pipeline"),
               "--runs", str(run), "--sweep", sweep, "--target", str(target), "--cer"]  # fmt: skip

    worse = subprocess.run(command + [_cer_sweep(tmp_path / "worse.json", run / "pipeline", 0.6)], capture_output=True,
                           text=True, cwd=tmp_path)  # fmt: skip
    assert worse.returncode == 2 and "CER did not improve" in worse.stderr and "0.6 vs 0.6" in worse.stderr
    assert "Traceback" not in worse.stderr and (target / "keep.txt").read_text() == "the shipped model"
    other = subprocess.run(command + [_cer_sweep(tmp_path / "other.json", previous, 0.4)], capture_output=True,
                           text=True, cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2 and "not the pipeline being shipped" in other.stderr
    assert (target / "keep.txt").exists()

    heldout = _cer_sweep(tmp_path / "heldout.json", run / "pipeline", 0.7, "128 validation programs of Y")
    better = subprocess.run(command + [sweep, heldout], capture_output=True, text=True, cwd=tmp_path)
    assert better.returncode == 0, better.stderr[-2000:]
    history = json.loads((target / "training_history.json").read_text())
    # the card states each CER's command with the shipped name in place of the run's folder: anyone can rerun it
    rerun = "crocodil eval --pipeline crocodil-python-tiny --modes autoencode --steps 4 --no-mauve"
    assert history[1]["cer"] == {"128 validation programs of X": {"cer": 0.5, "steps": 4, "num_samples": 2, "command": rerun},
                                 "128 validation programs of Y": {"cer": 0.7, "steps": 4, "num_samples": 2, "command": rerun}}  # fmt: skip
    assert (
        f"CER after it: 0.500 on 128 validation programs of X (4 steps: `{rerun}`)"
        in (target / "README.md").read_text()
    )
    forced = subprocess.run(command + [_cer_sweep(tmp_path / "worse.json", run / "pipeline", 0.6), "--allow-worse-cer"],
                            capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert forced.returncode == 0, forced.stderr[-2000:]


def test_a_card_command_names_an_installed_package_s_source_as_python_finds_it(tmp_path):
    """A CER measured on `--corpus <venv>/site-packages/diffusers` is stated with the folder Python finds for the
    package, so the command reruns in any environment; bash expands it to the installed package's folder."""
    import shlex

    import diffusers

    sys.path.insert(0, str(ROOT / "scripts"))
    from ship_tiny_model import shipped_command

    site = Path(diffusers.__file__).parent.parent
    measured = f"crocodil eval --pipeline {tmp_path / 'p'} --corpus {site / 'diffusers' / 'models'} --no-mauve"
    command = shipped_command(measured + " ; crocodil eval --corpus '/data/my code'", tmp_path / "p")
    first, second = command.split(" ; ")
    assert "site-packages" not in first and first.startswith("crocodil eval --pipeline crocodil-python-tiny --corpus")
    assert second == "crocodil eval --corpus '/data/my code'"  # not in a package: unchanged, quoted
    expanded = subprocess.run(["bash", "-c", "printf '%s\\n' " + first], capture_output=True, text=True, check=True)
    words = expanded.stdout.splitlines()
    assert words[words.index("--corpus") + 1] == str(site / "diffusers" / "models")
    assert shlex.split(shipped_command(measured, tmp_path / "other"))[3] == str(tmp_path / "p")  # another pipeline
