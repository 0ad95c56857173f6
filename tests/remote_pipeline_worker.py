"""A process where crocodil_hf cannot be imported: it loads a pipeline from the (loopback) Hub with diffusers alone,
`DiffusionPipeline.from_pretrained(repo, trust_remote_code=...)`, runs the calls of a JSON file (each a dict of
`pipe(**call)` arguments, `seed` giving one generator per sample) and writes their texts and NFE as JSON
(tests/test_remote_pipeline.py compares them with the installed package's).

    python tests/remote_pipeline_worker.py REPO REVISION|- CALLS.json OUT.json [--no-trust]
"""

import json
import sys


class BlockCrocodil:
    """An import hook that makes `import crocodil_hf` fail, as where it is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "crocodil_hf" or name.startswith("crocodil_hf."):
            raise ImportError(f"{name} is not installed here")


def main(repo: str, revision: str, calls_path: str, out_path: str, trust: bool) -> None:
    sys.meta_path.insert(0, BlockCrocodil())
    import torch
    from diffusers import DiffusionPipeline

    kwargs = {} if revision == "-" else {"revision": revision}
    try:
        pipe = DiffusionPipeline.from_pretrained(repo, trust_remote_code=trust, **kwargs)
    except ValueError as err:
        json.dump({"error": str(err)}, open(out_path, "w"))
        return
    pipe.set_progress_bar_config(disable=True)
    results = []
    for call in json.load(open(calls_path)):
        call = dict(call)
        seed, n = call.pop("seed"), call.get("num_samples", len(call.get("text") or [None]))
        out = pipe(generator=[torch.Generator().manual_seed(seed + i) for i in range(n)], **call)
        results.append({"texts": out.texts, "full_texts": out.full_texts, "nfe": out.nfe})
    module = sys.modules[type(pipe).__module__]
    json.dump(
        {
            "results": results,
            "classes": {name: type(c).__module__ for name, c in pipe.components.items() if c is not None},
            "marker": getattr(module, "REMOTE_CODE_MARKER", None),
            "crocodil_hf_imported": any(m.split(".")[0] == "crocodil_hf" for m in sys.modules),
        },
        open(out_path, "w"),
    )


if __name__ == "__main__":
    main(*sys.argv[1:5], trust="--no-trust" not in sys.argv)
