"""Scale-out of data-set runs: the samples are cut into shards that run as tasks on a Dask distributed cluster.

    results = map_shards(work, [args0, args1, ...], scheduler="tcp://host:8786")   # results in shard order

`map_shards` is the small function API (`hwgen run --scheduler` uses it through `hwgen.host.runs.run_batches`;
other commands that walk a data set can call it too): every shard is one task, submitted with `retries`, so a
shard whose task raises (or whose worker dies: the scheduler reschedules its tasks) runs again, and the results
come back in the order of the shards whatever order they finish in. A shard that still fails after its retries
raises the shard's own error. `scheduler` is an address (`tcp://...`), or a `distributed.Client` / `LocalCluster`
object already made by the caller (tests). The work function and its arguments travel to the workers by
(cloud)pickle, so the compiled network goes with them and every worker computes with the same weights.
"""
from __future__ import annotations

from typing import Callable

DEFAULT_RETRIES = 2


def _client(scheduler):
    try:
        from distributed import Client
    except ImportError:
        raise RuntimeError("--scheduler: a Dask scheduler was given but `distributed` is not installed: "
                           "pip install 'dask[distributed]'") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) and not hasattr(scheduler, "scheduler_address"):
        raise ValueError(f"--scheduler: got {scheduler!r}, allowed: a Dask scheduler address such as "
                         "tcp://host:8786 (or a distributed Client / cluster object)")
    return Client(scheduler), True


def workers(scheduler) -> int:
    """Number of workers the cluster has now (at least 1)."""
    client, own = _client(scheduler)
    try:
        return max(1, len(client.scheduler_info()["workers"]))
    finally:
        if own:
            client.close()


def map_shards(work: Callable, shards: list, scheduler, retries: int = DEFAULT_RETRIES,
               on_done: Callable | None = None) -> list:
    """[work(*shard) for shard in shards] computed on the cluster, in shard order. `on_done(k, result)` is called
    as each shard finishes (any order; e.g. a progress bar). `retries`: extra attempts per shard."""
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries: got {retries!r}, allowed: an integer >= 0")
    from distributed import as_completed
    client, own = _client(scheduler)
    try:
        futures = [client.submit(work, *shard, retries=retries, pure=False) for shard in shards]
        index = {f.key: k for k, f in enumerate(futures)}
        results = [None] * len(futures)
        for fut in as_completed(futures):
            k = index[fut.key]
            results[k] = fut.result()             # raises the shard's error once its retries are spent
            if on_done:
                on_done(k, results[k])
        return results
    finally:
        if own:
            client.close()


def split(items: list, parts: int) -> list[list]:
    """`items` cut into at most `parts` contiguous, nearly equal, non-empty pieces (order kept)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (p < extra)
        out.append(items[start:end])
        start = end
    return [o for o in out if o]
