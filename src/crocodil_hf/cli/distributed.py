"""Leaving a distributed job (torchrun / accelerate launch) in order at the end of a command."""


def end_process_group(store=None) -> None:
    """Under torchrun / accelerate launch: leave the job in order, then destroy the process group before the process
    exits (a gloo rank that exited with its group alive was seen to abort in teardown: "terminate called without an
    active exception", status -6, after the stage had finished).

    The ranks meet on the rendezvous store, not in a gloo collective: a rank that destroys its group closes its gloo
    sockets, and a rank still inside a collective on them then fails with "Connection closed by peer" (seen once in
    CI: rank 1 failed that way after the autoencoder stage had saved, with rank 0 done). Every rank first waits until
    all have arrived here, so none is inside a collective any more; rank 0, which may host the store, leaves last,
    after every other rank has made its last store call."""
    import gc

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if store is None:
        store = dist.distributed_c10d._get_default_store()
    rank, world = dist.get_rank(), dist.get_world_size()
    if store.add("crocodil/end/arrived", 1) == world:
        store.set("crocodil/end/all-arrived", "1")
    store.wait(["crocodil/end/all-arrived"])
    if rank != 0 and store.add("crocodil/end/left", 1) == world - 1:  # the last use of the store by ranks > 0
        store.set("crocodil/end/all-left", "1")
    if rank == 0 and world > 1:
        store.wait(["crocodil/end/all-left"])
    gc.collect()  # drop unreachable wrapped models (trainer cycles) so the group's last references go with it
    dist.destroy_process_group()
