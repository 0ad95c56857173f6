"""A fixed set of pipeline calls whose tokens and NFE are recorded in `tests/data/reference_calls.json`.

`test_reference_calls.py` replays them; `python tests/reference_calls.py --record` rewrites the file (only when a
change of behaviour is intended, and said so in the commit). Every mode, prompted and infill batches with different
prompt lengths, threshold decoding, semi-autoregressive blocks, temperature, DDIM / DPM-Solver++ priors, distilled
students and the shipped prefix priors.
"""

import json
import sys
from pathlib import Path

import torch

RECORD = Path(__file__).parent / "data" / "reference_calls.json"

SHIPPED_CALLS = {
    "cwd_default": dict(mode="con_within_disc", num_samples=2, steps=16),
    "ctd_default": dict(mode="con_then_disc", num_samples=2, steps=16),
    "mdm_fair": dict(mode="mdm", num_samples=2, steps=16, eos_penalty=2.0),
    "mdm_guided_off": dict(mode="mdm", num_samples=1, steps=16, use_mdm_demasker=False),
    "autoencode": dict(
        mode="autoencode", text=["def add(a, b):\n    return a + b\n", "import os\nprint(1)\n"], steps=8
    ),
    "cwd_blocks_temperature": dict(
        mode="con_within_disc", num_samples=2, gen_length=32, block_length=8, steps=16, temperature=0.7
    ),
    "cwd_threshold": dict(mode="con_within_disc", num_samples=2, threshold=0.6),
    "cwd_blocks_kv_dual": dict(
        mode="con_within_disc",
        num_samples=2,
        gen_length=32,
        block_length=8,
        steps=16,
        temperature=0.7,
        kv_cache="dual",
    ),
    "ctd_ddim_k4": dict(
        mode="con_then_disc", num_samples=1, steps=8, prior_scheduler="ddim", prior_steps=5, num_registers=2, eta=0.5
    ),
    "prompted": dict(
        heal=False, mode="con_within_disc", prompt=["import os\n", "def main():\n    x = 1\n"], gen_length=16, steps=8
    ),
    "infill": dict(
        heal=False,
        mode="con_then_disc",
        prompt=["def f(x):\n", "class A:\n    def g(self):\n"],
        suffix=["    return y\n", "        return 0\n"],
        gen_length=8,
        steps=8,
    ),
    "infill_mdm_random": dict(
        heal=False,
        mode="mdm",
        prompt="import sys\n",
        suffix="print(sys.argv)\n",
        gen_length=8,
        steps=4,
        remasking="random",
        temperature=1.0,
    ),
    "decode_registers": "decode",
    # healed boundaries (recorded when healing came; the three calls above pin the unhealed tokenization)
    "prompted_healed": dict(
        mode="con_within_disc", prompt=["import os\n", "def main():\n    x = 1\n"], gen_length=16, steps=8
    ),
    "infill_healed": dict(
        mode="con_then_disc",
        prompt=["def f(x):\n", "class A:\n    def g(self):\n"],
        suffix=["    return y\n", "        return 0\n"],
        gen_length=8,
        steps=8,
    ),
}

TINY_CALLS = {
    "tiny_distilled_cwd": dict(mode="con_within_disc", num_samples=2, gen_length=16, steps=8),
    "tiny_teacher_ctd": dict(
        mode="con_then_disc",
        num_samples=2,
        gen_length=16,
        steps=8,
        use_distilled_prior=False,
        prior_steps=3,
        prior_scheduler="unipc",
    ),
    "tiny_guided_mdm": dict(mode="mdm", num_samples=2, gen_length=16, steps=16, temperature=0.5),
}


def gens(n: int, seed: int = 0):
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def tiny_pipeline_with_students():
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.testing import build_tiny_pipeline

    pipe = build_tiny_pipeline(seed=0)
    students = {}
    for name, teacher in (("distilled_prior", pipe.prior), ("distilled_conditional_prior", pipe.conditional_prior)):
        torch.manual_seed(1)
        student = type(teacher).from_config(teacher.config, distilled_steps=2).eval()
        student.load_state_dict(teacher.state_dict())
        students[name] = student
    return CrocodilPipeline(**{**pipe.components, **students})


def _run(pipe, kwargs) -> dict:
    if kwargs == "decode":
        z = pipe.encode(["x = 1\n"])
        out = pipe.decode(z, gen_length=8, steps=8)
    else:
        kwargs = dict(kwargs)
        n = len(kwargs.get("text") or []) or (
            len(kwargs["prompt"]) if isinstance(kwargs.get("prompt"), list) else kwargs.get("num_samples", 1)
        )
        out = pipe(**kwargs, generator=gens(n))
    return {"sequences": out.sequences.tolist(), "texts": out.texts, "nfe": out.nfe}


def run_all() -> dict:
    from crocodil_hf import CrocodilPipeline

    results = {}
    shipped = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
    shipped.set_progress_bar_config(disable=True)
    for name, kwargs in SHIPPED_CALLS.items():
        results[name] = _run(shipped, kwargs)
    tiny = tiny_pipeline_with_students()
    tiny.set_progress_bar_config(disable=True)
    for name, kwargs in TINY_CALLS.items():
        results[name] = _run(tiny, kwargs)
    return results


if __name__ == "__main__":
    if "--record" in sys.argv:  # `--record NAME ...` records those calls only; the others stay as they were
        names = sys.argv[sys.argv.index("--record") + 1 :]
        results = run_all()
        recorded = json.loads(RECORD.read_text()) if names and RECORD.exists() else {}
        recorded.update({name: results[name] for name in (names or results)})
        RECORD.write_text(json.dumps(recorded, indent=1) + "\n")
        print(f"wrote {RECORD}")
