"""Autoencoding CER at 16 steps on 32 stdlib validation programs for runs/compare-<name> (prints JSON)."""

import json
import sys
import time
from pathlib import Path

import jiwer
from transformers import AutoTokenizer

from crocodil_hf import CrocodilPipeline, GuidedLLaDAForMaskedLM, RegisterEncoderModel, RegisterPriorTransformer
from crocodil_hf.data.corpus import CorpusConfig, build_program_dataset
from crocodil_hf.schedulers.scheduling_register_prior import make_sampling_scheduler

tok = AutoTokenizer.from_pretrained("runs/tiny-python/tokenizer")
ds, _ = build_program_dataset(tok, CorpusConfig(max_length=65), cache_dir=".cache/crocodil")
val = ds["validation"].shuffle(seed=0)["text"][:32]
res = {}
for name in sys.argv[1:]:
    R = Path(f"runs/compare-{name}")
    enc = RegisterEncoderModel.from_pretrained(R / "encoder").eval()
    dem = GuidedLLaDAForMaskedLM.from_pretrained(R / "demasker").eval()
    etok = AutoTokenizer.from_pretrained(R / "encoder_tokenizer") if (R / "encoder_tokenizer").exists() else None
    prior = RegisterPriorTransformer(
        num_registers=16, register_dim=enc.config.register_dim, hidden_size=32, num_layers=1, num_attention_heads=4
    )
    pipe = CrocodilPipeline(
        demasker=dem,
        encoder=enc,
        prior=prior,
        scheduler=make_sampling_scheduler(),
        tokenizer=tok,
        encoder_tokenizer=etok,
    )
    pipe.set_progress_bar_config(disable=True)
    t = time.time()
    ae = pipe(mode="autoencode", text=val, gen_length=64, steps=16)
    rec = json.loads((R / "training_complete.json").read_text())["metrics"]
    res[name] = {
        "cer@16": round(jiwer.cer(val, ae.texts), 3),
        "train_runtime_s": round(rec["train_runtime"]),
        "train_loss": round(rec["train_loss"], 3),
        "encoder_params_M": round(sum(p.numel() for p in enc.parameters()) / 1e6, 2),
    }
print(json.dumps(res, indent=2))
