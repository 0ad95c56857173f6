"""One rank of a two-process gloo job that ends with `crocodil_hf.cli.distributed.end_process_group`, for
`test_distributed.py::test_ranks_leave_in_order`. Rank 0 hosts the TCP store (as with `init_method=tcp://`, where
rank 0 leaving early takes the store with it); rank 1 is slow (each store call waits first, like a rank descheduled on
a busy machine). Writes, to OUT, when this rank's store calls ended and when it destroyed its process group."""

import json
import sys
import time
from datetime import timedelta

import torch.distributed as dist

from crocodil_hf.cli.distributed import end_process_group


class _SlowStore:
    def __init__(self, store, delay: float, log: list):
        self.store, self.delay, self.log = store, delay, log

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def call(*args):
            time.sleep(self.delay)
            result = method(*args)
            self.log.append(time.monotonic())
            return result

        return call


def main(rank: int, port: int, out: str) -> None:
    store = dist.TCPStore("127.0.0.1", port, 2, is_master=rank == 0, timeout=timedelta(seconds=60))
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2)
    dist.barrier()
    log: list[float] = []
    destroyed = []
    original = dist.destroy_process_group
    dist.destroy_process_group = lambda *a: (destroyed.append(time.monotonic()), original(*a))[1]
    end_process_group(_SlowStore(store, 0.3 if rank == 1 else 0.0, log))
    with open(out, "w") as f:
        json.dump({"store_calls_ended": log, "destroyed": destroyed, "initialized": dist.is_initialized()}, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
