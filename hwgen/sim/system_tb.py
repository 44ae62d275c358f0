"""cocotb bench: a command program on the accelerator top's host port, driven word by word from Python on every
clock edge (the per-cycle driver that benchmarks/system_sim_speed.py compares with the bulk testbench).

Job file (HWGEN_JOB): {"words": [hex], "n_reply": int, "result": path}; the result holds the reply words (hex)
and the cycle of the last reply."""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from hwgen.sim.streams import StreamSink, StreamSource


@cocotb.test()
async def run_program(dut):
    job = json.loads(open(os.environ["HWGEN_JOB"]).read())
    manifest = json.loads(open(job["manifest"]).read())
    streams = {s["name"]: s for s in manifest["streams"]}
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    source = StreamSource(dut, streams["i"], dut.clk)
    sink = StreamSink(dut, streams["o"], dut.clk)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    cocotb.start_soon(source.send([int(w, 16) for w in job["words"]]))
    await sink.receive(job["n_reply"], 100 * len(job["words"]) + 100_000)
    with open(job["result"], "w") as f:
        json.dump({"replies": [format(b, "x") for b in sink.beats], "cycles": sink.handshake_cycles[-1] + 1}, f)
