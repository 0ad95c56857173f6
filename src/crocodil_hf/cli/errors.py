"""Every failure of a command becomes one line and an exit status: 2 for what the user can fix, 1 for a bug."""


def explain_error(err: BaseException) -> tuple[str, int]:
    """One line for an exception and the exit status: 2 for what the user can fix (bad values, paths, files, the
    network, a full disk), 1 for an unexpected failure (a bug: the line names the exception type)."""
    import errno
    import pickle

    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start}); convert it to UTF-8.", 2
    if isinstance(err, ValueError):
        return str(err).strip() or type(err).__name__, 2
    if isinstance(err, pickle.UnpicklingError):  # torch.load(weights_only=True) refused a pickled payload
        return (
            "refused to load a file that holds pickled Python objects (they could run code when loaded); only "
            "weights are loaded: re-save it as safetensors (save_pretrained) from a source you trust.",
            2,
        )
    disk_full = isinstance(err, OSError) and err.errno == errno.ENOSPC
    # torch.save reports a full disk as a RuntimeError of its zip writer ("unexpected pos", "failed writing file")
    disk_full |= isinstance(err, RuntimeError) and any(
        marker in str(err) for marker in ("unexpected pos", "PytorchStreamWriter failed writing")
    )
    # any writer's own words for ENOSPC (safetensors' SafetensorError is neither an OSError nor a RuntimeError)
    disk_full |= any(marker in str(err) for marker in ("No space left on device", "os error 28"))
    if disk_full:
        where = f" while writing {err.filename}" if getattr(err, "filename", None) else ""
        return f"no space left on device{where}; free some space and rerun the same command.", 2
    hub = _hub_error(err)
    if hub:
        return hub, 2
    if any(type(e).__module__.startswith("datasets") for e in _chain(err)):  # a corpus that does not load
        root = list(_chain(err))[-1]  # the parser's own complaint, e.g. the JSON error and its line
        first = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
        return f"the corpus could not be read ({type(root).__name__}: {first}); check the corpus files.", 2
    if type(err).__name__ == "SafetensorError":
        return f"a weights file is not a valid safetensors file ({err}); re-download or re-save it.", 2
    if isinstance(err, OSError):
        if err.filename is not None and err.strerror:
            return f"{err.strerror}: {err.filename}; check the path.", 2
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, 2
    return f"unexpected {type(err).__name__}: {err}", 1


def _hub_error(err: BaseException) -> str | None:
    """A readable line for failures to reach or find something on the Hugging Face Hub."""
    names = {type(e).__name__ for e in _chain(err)}
    if names & {
        "OfflineModeIsEnabled",
        "LocalEntryNotFoundError",
        "ConnectError",
        "ConnectTimeout",
        "TimeoutException",
    }:
        from huggingface_hub import constants

        return (
            f"cannot reach the Hugging Face Hub at {constants.ENDPOINT} (offline or no network); use a local directory, "
            "or set HF_HUB_OFFLINE=0 and check the connection (and HF_ENDPOINT)."
        )
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError", "GatedRepoError"}:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"not found on the Hugging Face Hub ({first}); check the repository id, revision and your token."
    if "HfHubHTTPError" in names:
        return f"the Hugging Face Hub refused the request: {str(err).strip().splitlines()[0]}"
    return None


def _chain(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


__all__ = ["explain_error"]
