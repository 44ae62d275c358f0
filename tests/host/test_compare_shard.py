"""`hwgen compare --scheduler`: the data set's batches run as shards on a Dask cluster; the table equals the
one-machine run's, and a shard whose task fails once is run again."""
import numpy as np
import pytest

from hwgen.host import onnx_compare
from hwgen.host.onnx_compare import compare

distributed = pytest.importorskip("distributed", reason="dask[distributed] is part of the dev extra")
pytest.importorskip("onnxruntime", reason="onnxruntime is part of the dev extra")

NUMERICS = ["float", "lmul-e4m3", "int8"]


def table(summary: dict) -> list:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in summary["rows"]]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c


def test_sharded_compare_equals_the_local_run(cluster):
    # 300 digits in batches of 128: three shards, the last one short
    local = compare("digits-mlp", NUMERICS, limit=300, cycle_samples=0)
    sharded = compare("digits-mlp", NUMERICS, limit=300, cycle_samples=0, scheduler=cluster.scheduler_address)
    assert sharded["shards"] == 3 and local["shards"] == 0
    assert table(sharded) == table(local)
    assert table(local)[2]["rel_err_max"] > 0                      # L-Mul differs from float: a real comparison


def test_a_failing_shard_is_retried(cluster, monkeypatch, tmp_path):
    marker = tmp_path / "failed"
    run = onnx_compare._run_batches

    def flaky(m, prepared, batches, output):
        if int(np.asarray(next(iter(batches[0].values())))[0].sum()) == first_sum and not marker.exists():
            marker.write_text("1")                                  # the first batch's task fails once
            raise OSError("worker lost")
        return run(m, prepared, batches, output)

    from hwgen.host.onnx_models import load_dataset, resolve_model
    from sw_model.importers.onnx.model import OnnxModel
    _, path = resolve_model("digits-mlp")
    ds = load_dataset("digits", OnnxModel(path).graph.inputs[0], 300)
    first_sum = int(np.asarray(next(iter(ds.batches[0].values())))[0].sum())
    monkeypatch.setattr(onnx_compare, "_run_batches", flaky)
    sharded = compare("digits-mlp", ["int8"], limit=300, cycle_samples=0, scheduler=cluster.scheduler_address)
    monkeypatch.setattr(onnx_compare, "_run_batches", run)
    local = compare("digits-mlp", ["int8"], limit=300, cycle_samples=0)
    assert marker.exists() and table(sharded) == table(local)
