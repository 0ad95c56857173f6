"""What several commands share: the `--pipeline` and prior options, loading a pipeline, checks of sampling options,
fitting a file to the model's length, the NFE line, atomic writes. Torch-free at import."""

import argparse
import os

HELP = {  # the help of options several commands share
    "mode": "con_within_disc / con_then_disc: registers from the priors (Alg. 3 / 2); mdm: plain masked diffusion "
    "(default con_within_disc)",
    "block_length": "semi-autoregressive blocks of this many tokens (default: one block)",
    "temperature": "Gumbel temperature of the demasker's samples; 0 = greedy (default 0)",
    "seed": "random seed (default 0)",
    "reconstruction_length": "tokens to decode (default: the model's L; a longer file is cut after its last whole "
    "line that fits)",
}


def prior_args(parser) -> None:
    """How z₀ is sampled (the commands that sample from the priors); unset = the pipeline's saved choice."""
    from ..schedulers import PRIOR_SOLVER_NAMES

    parser.add_argument("--prior-steps", type=int, default=None, help="steps of the priors (default: the pipeline's)")
    parser.add_argument(
        "--conditional-prior-steps",
        type=int,
        default=None,
        help="steps of the conditional prior (ConWithinDisc, prompts; default: --prior-steps, else the pipeline's)",
    )
    parser.add_argument(
        "--prior-scheduler",
        default=None,
        choices=PRIOR_SOLVER_NAMES,
        help="the priors' sampler (default: the pipeline's)",
    )
    parser.add_argument(
        "--distilled-prior",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample z₀ with the pipeline's distilled few-step priors (default: when it has them)",
    )
    parser.add_argument(
        "--num-registers",
        type=int,
        default=None,
        help="k <= K registers shown to the demasker (default: the pipeline's default_num_registers for registers "
        "sampled from a prior, K for encoded ones)",
    )


def prior_kwargs(args) -> dict:
    """The pipeline-call arguments of `_prior_args`, checked."""
    from ..utils.numbers import check_number

    check_number("--prior-steps", args.prior_steps, minimum=1, integer=True, allow_none=True)
    check_number("--conditional-prior-steps", args.conditional_prior_steps, minimum=1, integer=True, allow_none=True)
    check_number("--num-registers", args.num_registers, minimum=1, integer=True, allow_none=True)
    return {
        "num_registers": args.num_registers,
        "prior_steps": args.prior_steps,
        "conditional_prior_steps": args.conditional_prior_steps,
        "prior_scheduler": args.prior_scheduler,
        "use_distilled_prior": args.distilled_prior,
    }


def cache_arg(parser) -> None:
    """`--kv-cache`: the sampler's approximate key/value cache (`CrocodilPipeline.__call__(kv_cache=...)`)."""
    from ..pipelines import KV_CACHES

    parser.add_argument(
        "--kv-cache",
        default=None,
        choices=tuple(KV_CACHES),
        help="approximate key/value cache within blocks, faster with several blocks or a long prompt (default: off): "
        + "; ".join(f"{name}: {what}" for name, what in KV_CACHES.items()),
    )


def pipeline_arg(parser) -> None:
    parser.add_argument(
        "--pipeline",
        default="crocodil-python-tiny",
        help="pipeline directory, Hub id, or shipped name (default: crocodil-python-tiny)",
    )


def configs(name: str):
    """The pipeline `name` built from its configs, without weights (`CrocodilPipeline.from_configs`): checking a
    call on it (`validate`, `check_sweep`) refuses a bad option before the weights load or any corpus is read."""
    from ..pipelines.pipeline_crocodil import CrocodilPipeline

    return CrocodilPipeline.from_configs(name)


def load(name: str, mode: str | None = None, *, skeleton=None, **call):
    """Load a pipeline after checking the source (an empty or foreign directory is refused before anything loads)
    and, with `mode`, the call `pipe(mode, **call)` on its configs: the one rule for every command, every check
    that the configs allow made before the weights load. `skeleton`: the `configs(name)` pipeline a command already
    built (so it is not built twice)."""
    from ..pipelines.pipeline_crocodil import CrocodilPipeline
    from ..utils.locate import locate_pipeline

    source = locate_pipeline(name)
    if mode is not None:
        (skeleton or CrocodilPipeline.from_configs(source)).validate(mode, **call)
    return CrocodilPipeline.from_pretrained(source)


def model_length(pipe) -> int:
    """The generation length L the pipeline was trained for (max_length − 1), recorded at assembly time."""
    return pipe.trained_gen_length or 64  # a pipeline assembled without a training record


def fit_program(path: str, text: str, pipe, gen_length: int) -> tuple[str, bool]:
    """The program, or its first complete lines when it is longer than `gen_length - 1` tokens."""
    ids = pipe.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < gen_length:
        return text, False
    kept = pipe.tokenizer.decode(ids[: gen_length - 1])
    kept = kept[: kept.rfind("\n") + 1] or kept
    if not kept.strip():
        raise ValueError(
            f"--gen-length {gen_length} leaves no room for {path} ({len(ids)} tokens + EOS); use a larger --gen-length."
        )
    return kept, True


def check_common(args) -> None:
    """Option values shared by generate / autoencode / interpolate, checked before the pipeline loads."""
    from ..utils.numbers import check_number

    check_number("--steps", args.steps, minimum=1, integer=True)
    check_number("--gen-length", args.gen_length, minimum=1, integer=True, allow_none=True)


MAX_SAMPLES_PER_CALL = 4096


def check_seed(seed: int, num_samples: int) -> None:
    """Sample i draws with seed + i: every one a valid torch seed (0 … 2^63 − 1)."""
    from ..utils.numbers import check_number

    check_number("--seed", seed, minimum=0, maximum=2**63 - 1 - num_samples, integer=True)


def check_sampling(args) -> None:
    """Option values of the commands that sample programs (generate, complete, infill)."""
    from ..utils.numbers import check_number

    check_common(args)
    if args.num_samples > MAX_SAMPLES_PER_CALL:
        raise ValueError(
            f"--num-samples {args.num_samples}: at most {MAX_SAMPLES_PER_CALL} in one call (they are one batch); "
            "for more, use `crocodil eval` (batched) or several calls with other --seed values."
        )
    check_number("--num-samples", args.num_samples, minimum=1, integer=True)
    check_seed(args.seed, args.num_samples)
    prior_kwargs(args)
    check_number("--temperature", args.temperature, minimum=0)
    check_number("--eos-penalty", args.eos_penalty, minimum=0)


def write_atomic(path: str, text: str) -> None:
    """Write through a temporary file and rename: a failure (a full disk) leaves no partial file behind."""
    import tempfile
    from pathlib import Path

    target = Path(path)
    handle = tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        dir=target.parent if str(target.parent) else ".",
        prefix=f".{target.name}.",
        delete=False,
    )
    try:
        with handle:
            handle.write(text)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def nfe_line(nfe: dict) -> str:
    """The pipeline's NFE accounting in one line, with the priors' share of the sample's FLOPs when they ran."""
    share = f" (priors {100 * nfe['prior_total'] / nfe['total']:.1f} %)" if nfe.get("prior_total") else ""
    calls = ", ".join(
        f"{nfe[f'{part}_calls']} {part} call{'' if nfe[f'{part}_calls'] == 1 else 's'}"
        for part in ("demasker", "prior", "encoder")
    )
    return f"NFE: {calls} = {nfe['total']:.2f} demasker-forward equivalents{share}"


def int_list(option: str, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{option} must be a comma list of positive integers such as 8,16; got {value!r}.")
    return values
