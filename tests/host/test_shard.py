"""Scale-out of `hwgen run` over a Dask cluster: shards merge in sample order, a failed shard is retried, and the
summary equals the one-machine run."""
import numpy as np
import pytest

from hwgen.host.run_network import run_network
from hwgen.host.runs import batch_ranges, run_batches
from hwgen.host.shard import map_shards, split

distributed = pytest.importorskip("distributed", reason="dask[distributed] is part of the dev extra")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c


class FakeRun:
    """A network of two layers whose device run differs from golden on some samples and reports cycles that
    depend on the batch (as a program's do); it raises on its first `failures` device calls for the batch
    starting at sample value `fail_at` (counted in a file, so every worker sees the same count)."""

    def __init__(self, marker=None, fail_at=None, failures=1):
        self.marker, self.fail_at, self.failures = marker, fail_at, failures

    def __call__(self, xb, device):
        if device and self.marker is not None and int(xb[0, 0]) == self.fail_at:
            seen = int(self.marker.read_text()) if self.marker.exists() else 0
            self.marker.write_text(str(seen + 1))
            if seen < self.failures:
                raise OSError("worker lost its simulator")
        acc0 = xb * 3
        if device:
            acc0 = acc0 + (xb % 7 == 0)                   # a device that disagrees on some samples
        records = [{"acc": acc0, "cycles": 100 + 7 * len(xb), "model_cycles": 90 + 7 * len(xb),
                    "sim_seconds": 0.5, "engine_busy": 5 * len(xb), "beats": 4 * len(xb)},
                   {"acc": xb.sum(axis=1, keepdims=True)}]
        return acc0[:, :2], records


def _tally(t):
    return (t.cycles, t.model_cycles, t.busy, t.beats, t.sim_seconds)


def test_split_keeps_order_and_sizes():
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([1, 2], 5) == [[1], [2]]              # never an empty shard
    assert split([], 3) == []
    assert batch_ranges(10, 4, 6) == [(0, 4), (4, 6), (6, 10)]   # cut at the device samples, as the local loop


def test_run_batches_on_dask_equals_local_and_retries_a_failed_shard(cluster, tmp_path):
    x = np.arange(53 * 3).reshape(53, 3)                  # sample i starts with 3 i
    local = run_batches("fake", "rtl", x, [0], 2, 37, 5, FakeRun())
    marker = tmp_path / "attempts"
    flaky = FakeRun(marker, fail_at=3 * 25)               # the batch (25, 30) fails once
    sharded = run_batches("fake", "rtl", x, [0], 2, 37, 5, flaky, scheduler=cluster.scheduler_address, shards=4)
    assert marker.read_text() == "2"                      # failed, then its shard ran again
    assert (sharded[0] == local[0]).all() and sharded[0].shape == (53, 2)
    assert sharded[1] == local[1] and local[1][0] > 0     # mismatches per layer, merged in sample order
    assert _tally(sharded[2]) == _tally(local[2]) and local[2].cycles == 8 * 100 + 7 * 37


def test_a_shard_that_keeps_failing_names_its_samples(cluster, tmp_path):
    x = np.arange(20 * 3).reshape(20, 3)
    always = FakeRun(tmp_path / "n", fail_at=3 * 12, failures=99)
    with pytest.raises(RuntimeError, match=r"fake: the rtl backend failed at samples 12\.\.15 \(worker lost"):
        run_batches("fake", "rtl", x, [0], 2, 20, 4, always, scheduler=cluster.scheduler_address, shards=2,
                    retries=1)
    assert (tmp_path / "n").read_text() == "2"            # one attempt + one retry


def test_map_shards_returns_in_shard_order(cluster):
    import time

    def slow_first(k):
        time.sleep(0.3 if k == 0 else 0.0)                # shard 0 finishes last
        return k * k
    seen = []
    assert map_shards(slow_first, [(k,) for k in range(4)], cluster.scheduler_address,
                      on_done=lambda k, r: seen.append(k)) == [0, 1, 4, 9]
    assert sorted(seen) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="retries: got -1, allowed: an integer >= 0"):
        map_shards(slow_first, [(1,)], cluster.scheduler_address, retries=-1)


def test_run_network_on_dask_gives_the_local_summary(cluster, tmp_path):
    local = run_network("digits-mlp-int8", limit=70, batch=16, out=tmp_path / "a")
    sharded = run_network("digits-mlp-int8", limit=70, batch=16, out=tmp_path / "b",
                          scheduler=cluster.scheduler_address)       # 5 batches in 4 shards
    local.pop("wall_s"), sharded.pop("wall_s")
    assert sharded == local and local["samples"] == 70 and local["accuracy"] > 0.9


def test_scheduler_refused_where_samples_do_not_run_in_batches():
    with pytest.raises(ValueError, match="--scheduler: got 'tcp://x:1' for minilm-layer, allowed: only for "
                                         "digits-mlp, digits-mlp-int8, digits-cnn"):
        run_network("minilm-layer", scheduler="tcp://x:1")
    with pytest.raises(ValueError, match="--scheduler: got 3, allowed: a Dask scheduler address"):
        map_shards(abs, [(1,)], 3)


def test_cli_run_with_scheduler(cluster, tmp_path, capsys):
    import json

    from hwgen.cli import main
    assert main(["run", "digits-mlp-int8", "--limit", "20", "--scheduler", cluster.scheduler_address,
                 "-o", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "run-digits-mlp-int8-golden.json").read_text())
    assert record["samples"] == 20 and record["mismatches"] == 0
    assert "accuracy" in capsys.readouterr().out


class DyingRun(FakeRun):
    """Kills its worker process the first time it sees the batch starting at sample value `fail_at`."""

    def __call__(self, xb, device):
        if device and int(xb[0, 0]) == self.fail_at and not self.marker.exists():
            self.marker.write_text("died")
            import os
            os._exit(1)
        return FakeRun()(xb, device)


@pytest.mark.slow
def test_a_dead_worker_s_shard_runs_again(tmp_path):
    """Two worker processes; one dies in the middle of a shard: the scheduler reruns that shard elsewhere and the
    result equals the local run."""
    x = np.arange(30 * 3).reshape(30, 3)
    local = run_batches("fake", "rtl", x, [0], 2, 30, 5, FakeRun())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        sharded = run_batches("fake", "rtl", x, [0], 2, 30, 5, DyingRun(tmp_path / "dead", fail_at=3 * 20),
                              scheduler=c.scheduler_address, shards=3)
    assert (tmp_path / "dead").read_text() == "died"
    assert (sharded[0] == local[0]).all() and sharded[1] == local[1] and _tally(sharded[2]) == _tally(local[2])
