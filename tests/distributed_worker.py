"""Run `crocodil <argv>` in one process of a multi-process launch (torchrun / accelerate launch) and, when a stage
saves, also write this process's view of the trained objective's parameters to `$CROCODIL_DUMP_DIR/rank<i>.pt`
(sharded parameters gathered in full), so that tests can compare what the ranks hold."""

import json
import os
import sys

import torch

from crocodil_hf.cli import main
from crocodil_hf.training.stages import autoencoder, mdm, prior


def _capture(save_stage):
    def wrapped(trainer, objective, *args, **kwargs):
        model = trainer.accelerator.unwrap_model(trainer.model)
        partitioned = any(getattr(p, "ds_tensor", None) is not None for p in model.parameters())
        if partitioned:  # ZeRO-3: gather every parameter on every rank to read it
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(model.parameters())):
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state = model.state_dict()
        full = {
            k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu().clone() for k, v in state.items()
        }
        target = os.environ["CROCODIL_DUMP_DIR"]
        os.makedirs(target, exist_ok=True)
        rank = trainer.args.process_index
        torch.save(full, os.path.join(target, f"rank{rank}.pt"))
        info = {
            "sharded": partitioned or any(hasattr(v, "full_tensor") for v in state.values()),
            "wrapper": type(trainer.model_wrapped).__name__,
            "world_size": trainer.args.world_size,
        }
        with open(os.path.join(target, f"rank{rank}.json"), "w") as f:
            json.dump(info, f)
        return save_stage(trainer, objective, *args, **kwargs)

    return wrapped


if os.environ.get("CROCODIL_DUMP_DIR"):
    for module in (mdm, autoencoder, prior):
        module.save_stage = _capture(module.save_stage)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
