"""Generic cocotb bench for a unit with one input stream `i` and one output stream `o`.

The pytest side (see `harness.run_vectors`) writes a job file: the manifest, input field arrays, expected
output field arrays (from the golden model), gap/backpressure probabilities and a seed. This bench drives the
inputs, collects the outputs, and writes a summary JSON (mismatches, handshake cycles) that pytest asserts on.
The sink checks the stream rules on `o` on every edge; a violation is written to the summary as `protocol` (the
message naming stream, rule and cycle) and fails the test.
"""
import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from hwgen.sim.harness import StreamProtocolError
from hwgen.sim.streams import StreamSink, StreamSource, pack_beats, unpack_beats


@cocotb.test()
async def run_vectors(dut):
    job = json.loads(open(os.environ["HWGEN_JOB"]).read())
    manifest = job["manifest"]
    streams = {s["name"]: s for s in manifest["streams"]}
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
    await ClockCycles(dut.clk, 2)           # idle beats (all-ones payload) settle Icarus' `always @*` blocks

    n_out = len(next(iter(expected.values())))
    beats = pack_beats(streams["i"]["fields"], inputs)
    timeout = job.get("timeout_cycles") or \
        50 + 4 * (len(beats) + n_out) * (1 + int(1 / max(1e-3, 1 - max(job["gap"], job["backpressure"]))))
    cocotb.start_soon(source.send(beats))
    try:
        await sink.receive(n_out, timeout)
        extra_valid = int(await sink.hold(4))  # a beat more than expected must not appear
    except StreamProtocolError as e:
        with open(job["result"], "w") as f:
            json.dump({"protocol": str(e), "n_out": len(sink.beats), "mismatches": []}, f)
        raise

    got = unpack_beats(streams["o"]["fields"], sink.beats)
    mismatches = []
    for name, want in expected.items():
        differs = got[name].astype(np.uint64) != want.astype(np.uint64)
        bad = np.nonzero(differs.reshape(len(differs), -1).any(axis=1))[0]     # array fields: any element
        for j in bad[:20].tolist():
            mismatches.append({"beat": j, "field": name, "got": got[name][j].tolist(), "want": want[j].tolist()})
        if len(bad):
            mismatches.append({"field": name, "count": int(len(bad))})
    summary = {"n_in": len(beats), "n_out": len(sink.beats), "mismatches": mismatches, "extra_output": extra_valid,
               "in_cycles": source.handshake_cycles, "out_cycles": sink.handshake_cycles}
    with open(job["result"], "w") as f:
        json.dump(summary, f)
    assert not mismatches, f"{len(mismatches)} mismatch records, first: {mismatches[:3]}"
    assert not extra_valid, "an extra output beat appeared"
