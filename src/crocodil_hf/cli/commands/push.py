"""`crocodil push DIRECTORY ORG/NAME`: a pipeline or a stage output, with its model card, to the Hub. Remote code
is written from the installed package source, never from the folder."""


def register(subparsers) -> None:
    push = subparsers.add_parser("push", help="push a pipeline or a stage output (with its model card) to the Hub")
    push.add_argument("directory", help="a pipeline directory or a stage output directory")
    push.add_argument("repo_id", help="org/name on the Hub")
    push.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument(
        "--commit-message", default=None, help="the Hub commit's message (default: one naming the folder)"
    )


def run(args, rest=None) -> int:
    from pathlib import Path

    from ...utils.files import OUTPUT_MARKER

    folder = Path(args.directory)
    if not folder.is_dir() or not any(p.name != OUTPUT_MARKER for p in folder.iterdir()):
        raise ValueError(f"{folder} is not a non-empty directory; expected a pipeline or a stage output directory.")
    if args.repo_id.count("/") != 1 or not all(args.repo_id.split("/")):
        raise ValueError(f"repo_id must look like org/name, got {args.repo_id!r}.")
    check_loadable(folder)
    from huggingface_hub import HfApi

    from ...evaluation.model_card import minimal_card

    api = HfApi()
    url = api.create_repo(args.repo_id, private=args.private, exist_ok=True)
    if args.revision and args.revision != "main":
        api.create_branch(args.repo_id, branch=args.revision, exist_ok=True)
    if not (folder / "README.md").exists():
        card = minimal_card(folder, args.repo_id)
        api.upload_file(
            path_or_fileobj=str(card).encode(),
            path_in_repo="README.md",
            repo_id=args.repo_id,
            revision=args.revision,
            commit_message="Add model card",
        )
    info = api.create_commit(
        repo_id=args.repo_id,
        operations=push_operations(folder),
        revision=args.revision,
        commit_message=args.commit_message or f"Upload {folder.name} with crocodil push",
    )
    print(f"pushed {folder} to {url} (revision {args.revision or 'main'}, commit {info.oid})")
    return 0


def check_loadable(folder) -> None:
    """Before any network call: every safetensors file's header opens, every JSON file parses, and a pipeline folder
    loads with the strict loaders; otherwise a ValueError naming the file, and nothing is uploaded."""
    import json

    from safetensors import safe_open

    for path in sorted(folder.rglob("*")):
        if path.is_dir() or any(p.startswith((".", "checkpoint-")) for p in path.relative_to(folder).parts):
            continue
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as weights:
                    weights.keys()
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
        except Exception as err:  # SafetensorError, JSONDecodeError, UnicodeDecodeError: the file is broken
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{path} does not load ({first}); nothing was uploaded.") from None
    if (folder / "model_index.json").is_file():
        from ... import CrocodilPipeline

        try:
            CrocodilPipeline.from_pretrained(folder)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{folder} does not load as a pipeline ({first}); nothing was uploaded.") from None


def push_operations(folder) -> list:
    """The files of a folder to upload (no checkpoints, pickles or hidden files), with its remote code taken from the
    installed package source rather than from the folder (see `pipelines/remote_code.py`): for a pipeline, the whole
    pipeline's code and a `model_index.json` naming it, so that it loads with
    `DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True)` where crocodil_hf is not installed."""
    from huggingface_hub import CommitOperationAdd

    from ...pipelines.remote_code import remote_code_files, remote_index_text

    pipeline = (folder / "model_index.json").is_file()
    code = remote_code_files(folder, pipeline=pipeline)
    operations = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        parts = relative.parts
        skipped = any(p.startswith((".", "checkpoint-")) for p in parts) or path.suffix in (".pt", ".bin", ".pyc")
        skipped |= pipeline and relative.as_posix() == "model_index.json"
        if path.is_file() and not skipped and relative.as_posix() not in code:
            operations.append(CommitOperationAdd(relative.as_posix(), str(path)))
    operations += [CommitOperationAdd(name, str(source)) for name, source in sorted(code.items())]
    if pipeline:
        operations.append(CommitOperationAdd("model_index.json", remote_index_text(folder).encode()))
    return operations
