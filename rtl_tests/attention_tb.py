"""Long-run bench for the attention array (benchmarks: thousands of cycles per output row).

The generic `stream_tb` bounds a run by ~8 cycles per beat; the attention array spends 2 * head_dim / m0 cycles
per K/V beat, which is more for the benchmark presets. This bench is the same drive/collect/compare loop with
the cycle budget taken from the job file. Host side: `run_long(config, inputs, expected, max_cycles)`.
"""
import json
import os
import random
import shutil
import uuid
from pathlib import Path

import numpy as np

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles
except ImportError:                       # host side without cocotb: run_long reports it through the harness
    cocotb = None


if cocotb is not None:
    @cocotb.test()
    async def run_long_vectors(dut):
        from streams import StreamSink, StreamSource, pack_beats, unpack_beats
        job = json.loads(open(os.environ["HWGEN_JOB"]).read())
        streams = {s["name"]: s for s in json.loads(open(job["manifest"]).read())["streams"]}
        vectors = np.load(job["vectors"])
        inputs = {k[3:]: vectors[k] for k in vectors.files if k.startswith("in_")}
        expected = {k[4:]: vectors[k] for k in vectors.files if k.startswith("out_")}
        rng = random.Random(job["seed"])
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        source = StreamSource(dut, streams["i"], dut.clk, job["gap"], random.Random(rng.random()))
        sink = StreamSink(dut, streams["o"], dut.clk, job["backpressure"], random.Random(rng.random()))
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)
        n_out = len(next(iter(expected.values())))
        cocotb.start_soon(source.send(pack_beats(streams["i"]["fields"], inputs)))
        await sink.receive(n_out, job["max_cycles"])
        got = unpack_beats(streams["o"]["fields"], sink.beats)
        bad = {k: int(np.sum(got[k].astype(np.uint64) != v.astype(np.uint64))) for k, v in expected.items()}
        with open(job["result"], "w") as f:
            json.dump({"mismatch_count": bad, "in_cycles": source.handshake_cycles,
                       "out_cycles": sink.handshake_cycles}, f)
        assert not any(bad.values()), f"mismatches: {bad}"


def run_long(config, inputs: dict, expected: dict, max_cycles: int, *, gap: float = 0.0,
             backpressure: float = 0.0, seed: int = 0, sim: str = "verilator") -> dict:
    """Like harness.run_vectors with an explicit cycle budget; returns in/out handshake cycles."""
    from harness import BUILD, design, run_bench
    verilog, manifest = design(config)
    stem = BUILD / "jobs" / uuid.uuid4().hex
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.savez(f"{stem}.npz", **{f"in_{k}": np.asarray(v) for k, v in inputs.items()},
             **{f"out_{k}": np.asarray(v) for k, v in expected.items()})
    job = {"manifest": str(verilog.with_suffix(".json")), "vectors": f"{stem}.npz", "result": f"{stem}.result.json",
           "gap": gap, "backpressure": backpressure, "seed": seed, "max_cycles": max_cycles}
    Path(f"{stem}.json").write_text(json.dumps(job))
    try:
        run_dir = run_bench(verilog, manifest, "attention_tb", {"HWGEN_JOB": f"{stem}.json"}, sim)
        shutil.rmtree(run_dir, ignore_errors=True)
        return json.loads(Path(job["result"]).read_text())
    finally:
        for suffix in (".npz", ".json", ".result.json"):
            Path(f"{stem}{suffix}").unlink(missing_ok=True)
