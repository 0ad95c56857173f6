"""Install a trained tiny pipeline as the shipped `crocodil-python-tiny`, with a model card built from its sweep.

Usage:
    python scripts/ship_tiny_model.py --pipeline runs/tiny-python/pipeline --sweep runs/eval/sweep.json
    # a continuation (scripts/continue_tiny_python.sh) of the shipped model, stored in half precision:
    python scripts/ship_tiny_model.py --pipeline runs/cont/pipeline --runs runs/cont \
        --script scripts/continue_tiny_python.sh --sweep runs/eval-a/sweep.json runs/eval-b/sweep.json

Copies the pipeline into `src/crocodil_hf/pretrained/crocodil-python-tiny/` (weights as safetensors, configs,
tokenizer; no remote code: `crocodil push` writes it from the package source), writes its README.md model card and a
copy in `model_cards/crocodil-python-tiny.md`.

Training is cumulative: the shipped folder's `training_history.json` lists every training run that led to its
weights. A pipeline trained with `--init_from` another (the shipped model, or a directory) adds its run to that
pipeline's history; one trained from scratch starts a new history. The card states the runs and their total wall time and CPU-hours.
"""

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from crocodil_hf.evaluation.model_card import build_model_card
from crocodil_hf.training.stages.common import last_complete_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "crocodil_hf" / "pretrained" / "crocodil-python-tiny"
HISTORY = "training_history.json"
# `prefix-*`: prefix priors trained from a run's K-register priors (`--prior_num_registers`, docs/results.md "Prefix priors")
STAGES = (
    "mdm", "autoencoder", "registers", "prior", "conditional-prior", "prefix-prior", "prefix-conditional-prior",
    "mdm-baseline",
)  # fmt: skip
BASELINE_NOTE = (
    '`mdm-baseline` is the plain-MDM baseline shipped as the `mdm_demasker` component (what `mode="mdm"` runs): '
    "a demasker of the same size trained with LLaDA's loss and no registers for as many steps as the guided demasker "
    "has seen (its stage-0 steps plus every autoencoder step)."
)


def count_parameters(folder: Path) -> dict[str, int]:
    from safetensors.torch import load_file

    return {
        w.parent.name: sum(t.numel() for t in load_file(str(w)).values())
        for w in sorted(folder.glob("*/*.safetensors"))
    }


def store_half_precision(folder: Path) -> None:
    """Floating-point weights as float16 (the components load back as float32: `from_pretrained`'s default)."""
    from safetensors.torch import load_file, save_file

    for weights in folder.glob("*/*.safetensors"):
        tensors = load_file(str(weights))
        save_file(
            {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
            str(weights),
            metadata={"format": "pt"},
        )


def drop_unused_encoder_head(folder: Path) -> bool:
    """Remove the output head of a LLaDA encoder backbone saved untied (encoders built before `build_encoder` tied it).

    The registers are read from the backbone's hidden states, never from its logits, so the head (vocab × width
    weights: 1 M parameters, 2 MB per ship in float16) never runs; with `weight_tying` it is no module at all. The
    encoder's outputs are unchanged. Returns whether anything was dropped.
    """
    from safetensors.torch import load_file, save_file

    config_file, weights = folder / "encoder" / "config.json", folder / "encoder" / "model.safetensors"
    if not config_file.exists() or not weights.exists():
        return False
    config = json.loads(config_file.read_text())
    backbone = config.get("backbone_config") or {}
    if backbone.get("model_type") != "llada" or backbone.get("weight_tying"):
        return False
    tensors = load_file(str(weights))
    head = "backbone.model.transformer.ff_out.weight"
    tensors.pop(head, None)
    backbone["weight_tying"] = True
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(weights), metadata={"format": "pt"})
    return True


def merged_sweep(paths: list[str]) -> dict:
    sweeps = [json.loads(Path(p).read_text()) for p in paths]
    sweep = sweeps[0]
    for other in sweeps[1:]:
        if other["scorer"] != sweep["scorer"] or other["config"]["gen_length"] != sweep["config"]["gen_length"]:
            raise ValueError("sweeps to merge must share scorer and gen_length")
        sweep["points"] += other["points"]
        sweep["config"]["modes"] += [m for m in other["config"]["modes"] if m not in sweep["config"]["modes"]]
        sweep["command"] = sweep.get("command", "") + " ; " + other.get("command", "")
    order = {"mdm": 0, "con_then_disc": 1, "con_within_disc": 2, "autoencode": 3}
    sweep["points"].sort(key=lambda p: (order.get(p["mode"], 9), p["block_length"], p["steps"]))
    return sweep


def _last_checkpoint_step(stage_dir: Path) -> int | None:
    """The step of a stage's last complete checkpoint (for records written before they held `steps`)."""
    checkpoint = last_complete_checkpoint(stage_dir)
    return json.loads(Path(checkpoint, "trainer_state.json").read_text())["global_step"] if checkpoint else None


def this_run(runs: Path, script: str, cpu_overrides: dict[str, float], wall_minutes: float | None) -> dict:
    """The training run behind the pipeline, from its stages' `training_complete.json` records."""
    stages, init_from = {}, None
    for stage in STAGES:
        record_file = runs / stage / "training_complete.json"
        if not record_file.exists():
            continue
        record = json.loads(record_file.read_text())
        metrics = record.get("metrics", {})
        cpu = cpu_overrides.get(stage, record.get("cpu_seconds"))
        if cpu is not None:
            cpu *= record.get("num_processes", 1)
        stages[stage] = {
            "steps": record.get("steps") or _last_checkpoint_step(runs / stage),
            "wall_minutes": round(metrics["train_runtime"] / 60, 1) if "train_runtime" in metrics else None,
            "cpu_minutes": round(cpu / 60, 1) if cpu is not None else None,
            "train_loss": round(metrics["train_loss"], 4) if "train_loss" in metrics else None,
        }
        init_from = init_from or record.get("init_from")
    if not stages:
        raise ValueError(f"{runs} holds no stage records (*/training_complete.json).")
    return {
        "date": date.today().isoformat(),
        "script": script,
        "init_from": init_from,
        "stages": stages,
        "wall_minutes": wall_minutes,
    }


def same_run(previous: dict, run: dict) -> bool:
    """Whether `run` ships the run recorded as `previous` again (after a new sweep, or with a stage added to it, such
    as the MDM baseline): every stage `previous` recorded is in `run`, unchanged. Its entry is then replaced."""
    return all(run["stages"].get(name) == stage for name, stage in previous["stages"].items())


def installed_package_word(path: str) -> str | None:
    """A shell word for `path` when it lies in an installed package (under `site-packages`): the package's folder as
    Python finds it, so a command stays valid in any environment (`.venv/lib/python3.11/site-packages/diffusers` →
    `"$(python -c 'import diffusers, os; print(os.path.dirname(diffusers.__file__))')"`); else None."""
    parts = Path(path).parts
    where = [i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")]
    if not where or where[-1] + 1 >= len(parts) or not parts[where[-1] + 1].isidentifier():
        return None
    package, rest = parts[where[-1] + 1], parts[where[-1] + 2 :]
    found = f"\"$(python -c 'import {package}, os; print(os.path.dirname({package}.__file__))')\""
    return found + "".join(f"/{shlex.quote(part)}" for part in rest)


def shipped_command(command: str, pipeline: Path, name: str = TARGET.name) -> str:
    """`command` (a `crocodil eval` line, or several joined by " ; ") as anyone with the package can rerun it:
    `--pipeline PIPELINE` as `--pipeline NAME` (the shipped folder holds the same weights), and a `--corpus` inside
    an installed package as that package's folder found by Python (`installed_package_word`), not this machine's
    path."""
    parts = []
    for one in command.split(" ; "):
        words = shlex.split(one)
        quoted = [shlex.quote(word) for word in words]
        for i, (option, value) in enumerate(zip(words, words[1:])):
            if option == "--pipeline" and Path(value).resolve() == pipeline.resolve():
                quoted[i + 1] = name
            if option == "--corpus":
                quoted[i + 1] = installed_package_word(value) or quoted[i + 1]
        parts.append(" ".join(quoted))
    return " ; ".join(parts)


def measured_cer(paths: list[str], pipeline: Path) -> dict[str, dict]:
    """`{references: {"cer", "steps", "num_samples", "command"}}` from `crocodil eval --modes autoencode` sweeps of
    `pipeline` (one per reference set: the validation split, code outside the training corpus)."""
    cer = {}
    for path in paths:
        sweep = json.loads(Path(path).read_text())
        measured = sweep.get("pipeline")
        if measured is None or Path(measured).resolve() != pipeline.resolve():
            raise ValueError(f"--cer {path} measured {measured!r}, not the pipeline being shipped ({pipeline}).")
        points = [p for p in sweep["points"] if p["mode"] == "autoencode" and "cer" in p["metrics"]]
        if len(points) != 1:
            raise ValueError(f"--cer {path} must hold one autoencode point with a CER; it holds {len(points)}.")
        point = points[0]
        cer[sweep["references"]["description"]] = {
            "cer": round(point["metrics"]["cer"], 4),
            "steps": point["steps"],
            "num_samples": point["metrics"]["num_samples"],
        }
        if sweep.get("command"):
            cer[sweep["references"]["description"]]["command"] = shipped_command(sweep["command"], pipeline)
    return cer


def cer_regressions(previous: dict | None, run: dict) -> list[str]:
    """Where `run`'s CER is not lower than the run it continued (`previous`) on the same references and steps."""
    worse = []
    for references, new in run.get("cer", {}).items():
        old = (previous or {}).get("cer", {}).get(references)
        if old is not None and old["steps"] == new["steps"] and new["cer"] >= old["cer"]:
            worse.append(f"{new['cer']} vs {old['cer']} on {references} ({new['steps']} steps)")
    return worse


def previous_history(init_from: str | None) -> list[dict]:
    """The training history of the pipeline a run continued from (`--init_from`: a shipped name or a directory);
    empty for a run from scratch."""
    if not init_from:
        return []
    from crocodil_hf.utils.locate import locate_pipeline

    record = Path(str(locate_pipeline(init_from))) / HISTORY
    if not record.is_file():
        raise ValueError(f"the run continued {init_from}, which has no {HISTORY}: its training cannot be added up.")
    return json.loads(record.read_text())


def totals(history: list[dict]) -> tuple[float, float]:
    """(wall minutes, CPU minutes) over all runs: a run's own total where recorded, else the sum of its stages."""
    wall = cpu = 0.0
    for run in history:
        stages = run["stages"].values()
        wall += run.get("wall_minutes") or sum(s.get("wall_minutes") or 0 for s in stages)
        cpu += run.get("cpu_minutes") or sum(s.get("cpu_minutes") or 0 for s in stages)
    return wall, cpu


def _stage_parts(stage: dict) -> tuple[str, ...]:
    return (
        f"{stage['steps']} steps" if stage.get("steps") else "",
        f"{stage['wall_minutes']} min" if stage.get("wall_minutes") else "",
        f"{stage['cpu_minutes']} CPU-min" if stage.get("cpu_minutes") else "",
        f"final loss {stage['train_loss']:.3f}" if stage.get("train_loss") is not None else "",
    )


def training_text(history: list[dict], corpus: str) -> str:
    lines = [
        "Trained on CPU (2 cores) with the project's own recipes (configs `tiny-python/<stage>`) on the CPython standard "
        "library's `.py` files, tests excluded, split into train/validation by file-path hash. Corpus: "
        f"{corpus}.\n\nTraining is cumulative: each run below continued the weights of the run before it "
        "(`--init_from`, fresh optimizer and warm-up), except the first, from scratch. The runs "
        f"(`{HISTORY}` in this folder):\n"
    ]
    if any("mdm-baseline" in run["stages"] for run in history):
        lines[0] += BASELINE_NOTE + "\n"
    for number, run in enumerate(history, 1):
        stages = ", ".join(
            " ".join([f"`{name}`", ", ".join(part for part in _stage_parts(s) if part)]).strip()
            for name, s in run["stages"].items()
        )
        source = f"from `{run['init_from']}`" if run.get("init_from") else "from scratch"
        cer = "; ".join(
            f"{m['cer']:.3f} on {references} ({m['steps']} steps"
            + (f": `{m['command']}`)" if m.get("command") else ")")
            for references, m in run.get("cer", {}).items()
        )
        lines.append(
            f"{number}. {run['date']}, `bash {run['script']}` {source}: {stages}."
            + (f" Autoencoding CER after it: {cer}." if cer else "")
            + (f" {run['note']}" if run.get("note") else "")
        )
    wall, cpu = totals(history)
    lines.append(f"\nIn all: {wall:.0f} min of wall time, {cpu / 60:.1f} CPU-hours.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="runs/tiny-python/pipeline")
    parser.add_argument(
        "--sweep",
        nargs="+",
        default=["runs/eval/sweep.json"],
        help="one or more sweep JSONs of the same pipeline and settings (points are merged)",
    )
    parser.add_argument("--runs", default="runs/tiny-python", help="stage outputs (for the training record)")
    parser.add_argument("--script", default="scripts/train_tiny_python.sh", help="the script that trained the run")
    parser.add_argument(
        "--training-minutes",
        type=float,
        default=None,
        help="wall time of the whole run (default: the sum of its stages)",
    )
    parser.add_argument(
        "--cpu-seconds",
        nargs="*",
        default=[],
        metavar="STAGE=SECONDS",
        help="CPU time of stages whose record lacks `cpu_seconds` (written before stages recorded it)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float16", "float32"],
        default="float16",
        help="storage precision of the weights (they load back as float32)",
    )
    parser.add_argument(
        "--cer",
        nargs="*",
        default=[],
        metavar="SWEEP",
        help="`crocodil eval --pipeline PIPELINE --modes autoencode --steps 16 --no-mauve [--corpus DIR]` sweeps of the "
        "pipeline (the validation split; code outside the training corpus): recorded in the history, and a "
        "continuation is shipped only when each CER is lower than the previous run's on the same programs",
    )
    parser.add_argument(
        "--allow-worse-cer", action="store_true", help="ship even when a CER is not lower than the previous run's"
    )
    parser.add_argument("--note", default=None, help="a sentence on the run for the card (e.g. its overrides)")
    parser.add_argument("--target", default=str(TARGET), help="where to install it (default: the shipped folder)")
    args = parser.parse_args(argv)
    target = Path(args.target)

    pipeline, runs = Path(args.pipeline), Path(args.runs)
    sweep = merged_sweep(args.sweep)
    (Path(args.sweep[0]).parent / "sweep_merged.json").write_text(json.dumps(sweep, indent=2))
    overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.cpu_seconds)}
    run = this_run(runs, args.script, overrides, args.training_minutes)
    if args.note:
        run["note"] = args.note
    if args.cer:
        run["cer"] = measured_cer(args.cer, pipeline)
    history = previous_history(run["init_from"])
    if history and same_run(history[-1], run):
        history.pop()
    worse = cer_regressions(history[-1] if history else None, run)
    if worse and not args.allow_worse_cer:
        raise ValueError(
            "not shipped: autoencoding CER did not improve on the previous run ("
            + "; ".join(worse)
            + "); pass --allow-worse-cer to ship anyway."
        )
    history.append(run)
    corpus = (
        json.loads((runs / "autoencoder" / "training_complete.json").read_text()).get("corpus")
        if (runs / "autoencoder" / "training_complete.json").exists()
        else "the CPython standard library"
    )

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:  # build next to the target, then swap it in
        new = Path(staging) / target.name
        shutil.copytree(pipeline, new, ignore=shutil.ignore_patterns("*.bin", "*.pt", "*.py", "checkpoint-*", ".*"))
        drop_unused_encoder_head(new)
        if args.dtype == "float16":
            store_half_precision(new)
        (new / HISTORY).write_text(json.dumps(history, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        new.rename(target)
    params = count_parameters(target)
    wall, cpu = totals(history)

    model = (
        "Parameters per component: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in params.items()) + ". "
        "Demasker: LLaDA architecture (bidirectional, RMSNorm, RoPE, SwiGLU), from scratch, with a register "
        "prefix; encoder: a 2-layer LLaDA-architecture backbone sharing the demasker's byte-level BPE tokenizer, "
        "K = 16 registers; priors: 1-D DiTs with block-wise timestep offsets. Programs of up to 63 tokens "
        f"(gen_length 64 = program + EOS padding). Weights stored in {args.dtype}; they load as float32."
    )
    k = json.loads((target / "model_index.json").read_text()).get("default_num_registers")
    if k is not None:
        model += (
            f" Registers sampled from the priors (ConThenDisc, ConWithinDisc, prompts) guide the demasker through "
            f"their first k = {k} only by default (`default_num_registers`, chosen by measurement; nested dropout "
            "trains every prefix); autoencoding uses all of them."
        )
    limitations = (
        f"A demonstration-scale model: {cpu / 60:.1f} CPU-hours of training on a 2-core CPU. It shows the mechanics "
        "and the direction of the paper's effects, not its quality. Samples are often syntactically broken Python."
    )
    greedy_mdm = [
        p for p in sweep["points"]
        if p["mode"] == "mdm" and not sweep["config"].get("temperature") and p["metrics"].get("entropy") is not None
    ]  # fmt: skip
    if greedy_mdm and min(p["metrics"]["entropy"] for p in greedy_mdm) < 2.0:
        limitations += (
            " Greedy plain MDM (the `mdm` rows, entropy "
            + " / ".join(f"{p['metrics']['entropy']:.2f}" for p in greedy_mdm)
            + ") collapses to a few short lines or empty text; sample the baseline with `--temperature 1 --remasking "
            "random` (or `--eos-penalty`) to compare it fairly with the register-guided modes."
        )
    sweep["command"] = shipped_command(sweep.get("command", "crocodil eval"), pipeline)
    card = build_model_card(
        sweep,
        model_name="crocodil-python-tiny",
        repo_id="crocodil-python-tiny",
        model_description=model,
        training_description=training_text(history, corpus),
        limitations=limitations,
    )
    card.save(target / "README.md")
    if target.resolve() == TARGET.resolve():
        (ROOT / "model_cards").mkdir(exist_ok=True)
        card.save(ROOT / "model_cards" / "crocodil-python-tiny.md")
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    summary = {
        "shipped": str(target),
        "size_mb": round(size / 2**20, 1),
        "parameters": params,
        "training_wall_minutes": round(wall),
        "training_cpu_hours": round(cpu / 60, 2),
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    try:
        main()
    except ValueError as err:  # a bad input: one line, exit 2, nothing installed
        sys.exit(print(f"ship_tiny_model.py: error: {err}", file=sys.stderr) or 2)
