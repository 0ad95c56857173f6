"""`crocodil config NAME`: print the path of a shipped config (e.g. for `accelerate launch --config_file`)."""


def register(subparsers) -> None:
    config = subparsers.add_parser(
        "config",
        help="print the path of a shipped config (e.g. for `accelerate launch --config_file`)",
        description="Print the absolute path of a shipped config: tiny-python/<stage>, paper/<stage>, "
        "accelerate/fsdp, accelerate/deepspeed_zero3, accelerate/ds_zero3.",
    )
    config.add_argument("name", help="shipped config name, e.g. accelerate/fsdp")


def run(args, rest=None) -> int:
    from ...training.arguments import shipped_config

    print(shipped_config(args.name))
    return 0
