"""Inference across the processes of a launched job (`accelerate launch`, `torchrun`): accelerate's `PartialState`
splits the work and `gather_object` brings the results back in order, so a sharded run returns exactly what one
process returns (each sample keeps its own seed). In a plain process both are no-ops.

Example (any script; run it with `accelerate launch --num_processes 2 script.py` or `python script.py`):
    ```python
    import torch
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.utils.shards import is_main_process, map_sharded

    pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")

    def batch(start):  # samples start … start+7, sample i seeded i: the same texts whatever the process count
        generators = [torch.Generator().manual_seed(start + i) for i in range(8)]
        return pipe("con_within_disc", num_samples=8, steps=16, generator=generators).texts

    texts = [t for texts in map_sharded(batch, range(0, 64, 8)) for t in texts]
    if is_main_process():
        print(len(texts))  # 64, in order, on every process
    ```
"""

from collections.abc import Callable, Iterable
from typing import Any


def process_state():
    """accelerate's `PartialState` of this process. A launched job on a machine without an accelerator runs on gloo
    (`cpu=True`: accelerate otherwise sees one process per CPU-only rank)."""
    import os

    import torch
    from accelerate import PartialState

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(cpu=launched and not torch.accelerator.is_available())


def num_processes() -> int:
    """Processes of the launched job (1 in a plain process)."""
    return process_state().num_processes


def is_main_process() -> bool:
    """Whether this process writes and prints (rank 0; always in a plain process)."""
    return process_state().is_main_process


def map_sharded(fn: Callable[[Any], Any], items: Iterable) -> list:
    """`[fn(item) for item in items]` with the items split across the job's processes (contiguous shares,
    `PartialState.split_between_processes`) and the results gathered on every process, in the items' order."""
    items = list(items)
    state = process_state()
    if state.num_processes == 1:
        return [fn(item) for item in items]
    from accelerate.utils import gather_object

    with state.split_between_processes(list(enumerate(items))) as mine:
        local = [(index, fn(item)) for index, item in mine]
    gathered = gather_object(local)
    return [result for _, result in sorted(gathered, key=lambda pair: pair[0])]


def from_main_process(value: Any) -> Any:
    """The main process's `value` on every process (a decision only the main process can make, e.g. which points
    of a resumed sweep to keep, taken once and shared so every process runs the same calls)."""
    state = process_state()
    if state.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value if state.is_main_process else None], from_process=0)[0]


__all__ = ["from_main_process", "is_main_process", "map_sharded", "num_processes", "process_state"]
