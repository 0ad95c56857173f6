"""`crocodil assemble`: a CrocodilPipeline directory from stage outputs. The rules are `AssemblyPlan.check`'s; the
command spells the fields as its options and claims the output directory only after they pass."""


def register(subparsers) -> None:
    from ...schedulers import PRIOR_SOLVER_NAMES

    assemble = subparsers.add_parser("assemble", help="assemble a CrocodilPipeline directory from stage outputs")
    assemble.add_argument("--autoencoder", required=True, help="output of `crocodil train autoencoder`")
    assemble.add_argument("--prior", required=True, help="output of `crocodil train prior`")
    assemble.add_argument("--conditional-prior", help="output of `crocodil train conditional-prior`")
    assemble.add_argument("--distilled-prior", help="output of `crocodil train prior-distill` (optional)")
    assemble.add_argument(
        "--distilled-conditional-prior", help="output of `crocodil train conditional-prior-distill` (optional)"
    )
    assemble.add_argument(
        "--prior-scheduler", default="ddim", choices=PRIOR_SOLVER_NAMES, help="the priors' sampler saved with it"
    )
    assemble.add_argument(
        "--prior-steps", type=int, default=50, help="steps of the (teacher) priors when a call gives none"
    )
    assemble.add_argument(
        "--conditional-prior-steps",
        type=int,
        default=None,
        help="steps of the (teacher) conditional prior when a call gives none (default: --prior-steps)",
    )
    assemble.add_argument(
        "--distilled-steps",
        type=int,
        default=None,
        help="steps of the distilled priors when a call gives none (default: the steps each was distilled for)",
    )
    assemble.add_argument(
        "--num-registers",
        type=int,
        default=None,
        help="k <= K registers the demasker sees when they are sampled from a prior and a call gives none "
        "(default: K)",
    )
    assemble.add_argument(
        "--mdm-demasker",
        help='output of `crocodil train mdm`: the plain-MDM baseline that `mode="mdm"` runs (optional)',
    )
    assemble.add_argument("--output", required=True, help="pipeline directory to write")
    assemble.add_argument("--overwrite", action="store_true", help="replace an existing pipeline directory")


def run(args, rest=None) -> int:
    from dataclasses import fields

    from ...pipelines.assembly import AssemblyPlan, build_pipeline
    from ...utils.files import claim_output_dir

    plan = AssemblyPlan(**{f.name: getattr(args, f.name) for f in fields(AssemblyPlan)})
    plan.check(spell=lambda field: "--" + field.replace("_", "-"))
    claim_output_dir(args.output, "assemble", args.overwrite)
    build_pipeline(plan, args.output, overwrite=args.overwrite)
    print(f"pipeline written to {args.output}")
    return 0
