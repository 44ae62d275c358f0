"""Bulk simulation: the whole stream test runs inside the simulator, with no Python on any clock edge.

For a unit with one input stream `i` and one output stream `o`, a small Verilog testbench is generated from the
manifest: it loads the input beats with `$fread` (binary: a text `$readmemh` of a long network program cost more
than simulating it), drives them with LFSR-driven random gaps, takes the outputs
with LFSR-driven random backpressure, records the handshake cycle of every beat, and writes everything back with
`$writememh` before `$finish`. Python only writes the files before and reads them after. The testbench is
compiled once per (design, memory depth bucket, simulator); the beat count, gap and backpressure rates, seed and
file names are plusargs. This is the path for long runs (exhaustive sweeps, whole networks); the cocotb bench
(`stream_tb.py`) remains the reference BFM for the unit tests.

The testbench checks the stream rules of `amaranth.lib.stream` on the DUT's output stream `o` on every clock edge,
in clocked Verilog (a register holding the stalled payload and a few comparisons; no Python per edge; measured:
no visible cost under Verilator, a few per cent under Icarus on the smallest unit), the same rules as the cocotb
`StreamSink`:
- valid was high and ready low at the previous edge => valid is still high (`valid_dropped`),
- ... and the payload is unchanged (`payload_changed`),
- valid is 0 or 1, and the payload of a valid beat has no X/Z bit (`undefined`; only Icarus, which is 4-state,
  can see X/Z: under Verilator the comparison with 1'bx is constant false).
The first violation ends the simulation at the next edge with `HWGEN_BULK_PROTOCOL rule=<n> cycle=<c>` (the
rule codes are PROTOCOL_RULES), and `run_bulk` raises
`StreamProtocolError` naming the stream, the rule and the cycle (numbered like the handshake cycles).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from hwgen.cache import build_root
from hwgen.sim.harness import (
    StreamProtocolError,
    check_simulator,
    design,
    protocol_message,
)
from hwgen.sim.streams import pack_beats, unpack_beats

TESTBENCH = """`timescale 1ns/1ps
module hwgen_bulk_tb;
  localparam IW = {iw}, OW = {ow}, DEPTH = {depth}, RECORD = {record};   // RECORD: keep handshake cycles
  reg clk = 0, rst = 1, go = 0;
  reg [IW-1:0] in_mem [0:DEPTH-1];
  reg [OW-1:0] out_mem [0:DEPTH-1];
  reg [31:0] in_cyc [0:DEPTH-1];
  reg [31:0] out_cyc [0:DEPTH-1];
  reg [1023:0] in_file, out_file, in_cyc_file, out_cyc_file;
  integer n_in, n_out, gap, bp, max_cycles, seed, fd, got;
  reg [31:0] k_in = 0, k_out = 0, cycle = 0, lfsr_g, lfsr_b;
  reg held = 0;                          // a beat offered last cycle and not taken stays offered
  reg o_stalled = 0;                     // the stream-rule monitor on o (see below)
  reg [1:0] o_rule = 0;
  reg [31:0] o_rule_cycle = 0;
  reg [OW-1:0] o_held;
  wire i_ready, o_valid;
  wire [OW-1:0] o_payload;
  wire i_valid = go && k_in < n_in && (held || lfsr_g[15:8] >= gap);
  wire o_ready = go && lfsr_b[15:8] >= bp;
  wire finish = go && (k_out >= n_out || cycle >= max_cycles || o_rule != 0);
  {top} dut (.clk(clk), .rst(rst), .i__valid(i_valid), .i__ready(i_ready), .i__payload(in_mem[k_in]),
             .o__valid(o_valid), .o__ready(o_ready), .o__payload(o_payload));
  function [31:0] step(input [31:0] x);   // xorshift32
    reg [31:0] y;
    begin y = x ^ (x << 13); y = y ^ (y >> 17); step = y ^ (y << 5); end
  endfunction
  always #5 clk = ~clk;
  // Everything per cycle is clocked logic (no timing control), so the simulator runs it at full speed.
  always @(posedge clk) if (go && !finish) begin
    // a new offer decision only when none is pending; without gaps/backpressure the LFSRs stay put, so
    // valid and ready do not wake the design's logic every cycle (that alone cost 3x in simulation speed)
    if (gap != 0 && (!held || i_ready)) lfsr_g <= step(lfsr_g);
    if (bp != 0) lfsr_b <= step(lfsr_b);
    if (gap != 0) held <= i_valid && !i_ready;          // without gaps an offer is always there anyway
    if (i_valid && i_ready) k_in <= k_in + 1;
    if (o_valid && o_ready) begin out_mem[k_out] <= o_payload; k_out <= k_out + 1; end
    if (RECORD && i_valid && i_ready) in_cyc[k_in] <= cycle;
    if (RECORD && o_valid && o_ready) out_cyc[k_out] <= cycle;
    cycle <= cycle + 1;
    // Stream rules on o (module docstring). o_stalled: o offered and not taken at the last edge; o_held: its
    // payload. Written only when they change, and one test per edge on the common path: Icarus pays for every
    // statement and every nonblocking assignment. A stalled beat was checked for X/Z at its first edge, so
    // while stalled only "valid still 1, payload identical" is left to test. The first violation is kept in
    // o_rule/o_rule_cycle and ends the run through `finish`.
    if (o_valid && !o_ready) begin o_stalled <= 1; o_held <= o_payload; end
    else if (o_stalled) o_stalled <= 0;
    if (o_stalled ? o_valid !== 1'b1 || o_payload !== o_held
                  : o_valid !== 1'b0 && (o_valid !== 1'b1 || ^o_payload === 1'bx)) begin
      o_rule <= o_valid !== 1'b0 && o_valid !== 1'b1 ? 3 : !o_stalled ? 3 : !o_valid ? 1 : 2;
      o_rule_cycle <= cycle;
    end
  end
  always @(posedge clk) if (finish) begin
    if (o_rule != 0) $display("HWGEN_BULK_PROTOCOL rule=%0d cycle=%0d", o_rule, o_rule_cycle);
    if (n_out > 0) $writememh(out_file, out_mem, 0, n_out - 1);
    if (RECORD && n_in > 0) $writememh(in_cyc_file, in_cyc, 0, n_in - 1);
    if (RECORD && n_out > 0) $writememh(out_cyc_file, out_cyc, 0, n_out - 1);
    $display("HWGEN_BULK_DONE k_in=%0d k_out=%0d cycles=%0d", k_in, k_out, cycle);
    $finish;
  end
  initial begin
    if (!$value$plusargs("n_in=%d", n_in) || !$value$plusargs("n_out=%d", n_out) ||
        !$value$plusargs("gap=%d", gap) || !$value$plusargs("bp=%d", bp) ||
        !$value$plusargs("seed=%d", seed) || !$value$plusargs("max_cycles=%d", max_cycles) ||
        !$value$plusargs("in=%s", in_file) || !$value$plusargs("out=%s", out_file) ||
        !$value$plusargs("in_cyc=%s", in_cyc_file) || !$value$plusargs("out_cyc=%s", out_cyc_file)) begin
      $display("HWGEN_BULK_ERROR missing plusargs"); $finish;
    end
{load_in}
    lfsr_g = seed * 2 + 1; lfsr_b = seed * 2 + 12345;
    repeat (4) @(posedge clk);
    #1 rst = 0;
    repeat (2) @(posedge clk);
    #1 go = 1;
  end
endmodule
"""


def load_binary(mem: str, file: str, count: str, width: int, fd: str = "fd", got: str = "got") -> str:
    """Verilog statements that fill `mem[0:count-1]` from the binary file named by the reg `file` (what
    `write_binary` writes) and stop the simulation with HWGEN_BULK_ERROR on a short or missing file. Verilator and
    Icarus both fill each element from ceil(width / 8) big-endian bytes and keep the low `width` bits."""
    nbytes = (width + 7) // 8
    return f"""    if ({count} > 0) begin
      {fd} = $fopen({file}, "rb");
      {got} = 0;
      if ({fd} != 0) begin {got} = $fread({mem}, {fd}, 0, {count}); $fclose({fd}); end
      if ({got} != {count} * {nbytes}) begin
        $display("HWGEN_BULK_ERROR %0s: read %0d bytes, expected %0d", {file}, {got}, {count} * {nbytes});
        $finish;
      end
    end"""


def write_binary(path: Path, values, width: int):
    """Values (non-negative integers < 2^width) as ceil(width / 8) big-endian bytes each, for `load_binary`."""
    n = (width + 7) // 8
    path.write_bytes(b"".join(v.to_bytes(n, "big") for v in values))


def _bucket(n: int) -> int:
    """Memory depth: the next power of two >= n (min 2^16), so most jobs of a design share one build."""
    return max(1 << 16, 1 << (max(n, 1) - 1).bit_length())


def compile_testbench(tb: str, tb_top: str, verilog: Path, sim: str, kind: str) -> Path:
    """Compile a generated Verilog testbench `tb` (top module `tb_top`) with the design once per (texts, simulator);
    returns the executable (Verilator) or the vvp file (Icarus)."""
    check_simulator(sim)
    key = hashlib.sha256(json.dumps([verilog.read_text(), tb, sim]).encode()).hexdigest()[:16]
    out = build_root() / kind / f"{sim}-{verilog.stem}-{key}"
    binary = out / (f"V{tb_top}" if sim == "verilator" else "sim.vvp")
    if binary.exists():
        return binary
    tmp = out.with_name(out.name + f".tmp{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    (tmp / "tb.v").write_text(tb)
    if sim == "verilator":
        env = dict(os.environ, MAKEFLAGS="CFG_CXXFLAGS_PCH_I=-include")   # see harness.build
        if shutil.which("ccache"):
            env.setdefault("OBJCACHE", "ccache")
        cmd = ["verilator", "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--threads", "1",
               "-O3", "-CFLAGS", "-std=c++20 -fcoroutines", "--top-module", tb_top, "-Mdir", str(tmp), "tb.v",
               str(verilog), "-j", "2"]
    else:
        env = dict(os.environ)
        cmd = ["iverilog", "-g2012", "-o", "sim.vvp", "-s", tb_top, "tb.v", str(verilog)]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{kind} testbench build failed ({sim}):\n{proc.stderr[-3000:]}")
    try:
        os.replace(tmp, out)
    except OSError:                              # another worker finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def build_bulk(verilog: Path, manifest: dict, depth: int, sim: str, record: bool = True) -> Path:
    streams = {s["name"]: s for s in manifest["streams"]}
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    iw = widths[streams["i"]["payload"]]
    tb = TESTBENCH.format(iw=iw, ow=widths[streams["o"]["payload"]], depth=depth, top=manifest["top"],
                          record=int(record), load_in=load_binary("in_mem", "in_file", "n_in", iw))
    return compile_testbench(tb, "hwgen_bulk_tb", verilog, sim, "bulk")


def _read_hex(path: Path) -> list[int]:
    if not path.exists():                       # the testbench writes no file for zero beats
        return []
    values = []
    for line in path.read_text().splitlines():
        line = line.split("//")[0].strip()      # Icarus writes "// 0x..." address comments
        values += [int(word, 16) for word in line.split()]
    return values


PROTOCOL_RULES = {1: "valid_dropped", 2: "payload_changed", 3: "undefined"}     # the codes the testbench prints


def run_bulk(config, inputs, n_out: int, *, gap: float = 0.0, backpressure: float = 0.0, seed: int = 1,
             sim: str = "verilator", name: str | None = None, timeout_cycles: int | None = None) -> dict:
    """Run all input beats through the unit inside the simulator; returns the output field arrays, the handshake
    cycles of every input and output beat, total cycles and wall-clock seconds of the simulation.
    `timeout_cycles` overrides the default limit (about 4 cycles per beat, more with gaps) for slow units.

    `inputs`: per-field arrays, or a list of whole payload integers (any width); with a list, `outputs` is the
    list of output payload integers and the handshake cycles are not recorded (empty lists: recording them costs
    more simulation time than the rest of the testbench).

    A DUT that breaks a stream rule on `o` raises StreamProtocolError (module docstring)."""
    verilog, manifest = design(config, name)
    return run_bulk_on(verilog, manifest, inputs, n_out, gap=gap, backpressure=backpressure, seed=seed, sim=sim,
                       timeout_cycles=timeout_cycles)


def run_bulk_on(verilog: Path, manifest: dict, inputs, n_out: int, *, gap: float = 0.0, backpressure: float = 0.0,
                seed: int = 1, sim: str = "verilator", timeout_cycles: int | None = None) -> dict:
    """`run_bulk` for a design given as its Verilog file and manifest (e.g. one stored by `harness.save_design`)."""
    streams = {s["name"]: s for s in manifest["streams"]}
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    raw = isinstance(inputs, list)
    beats = inputs if raw else pack_beats(streams["i"]["fields"], inputs)
    depth = _bucket(max(len(beats), n_out))
    binary = build_bulk(verilog, manifest, depth, sim, record=not raw)
    job = build_root() / "jobs" / f"bulk-{uuid.uuid4().hex[:12]}"
    job.mkdir(parents=True)
    try:
        write_binary(job / "in.bin", beats, widths[streams["i"]["payload"]])
        default_timeout = 64 + 4 * (len(beats) + n_out) * int(1 + 8 / max(1e-3, 1 - max(gap, backpressure)))
        args = [f"+n_in={len(beats)}", f"+n_out={n_out}", f"+gap={int(round(gap * 256))}",
                f"+bp={int(round(backpressure * 256))}", f"+seed={seed}",
                f"+max_cycles={timeout_cycles or default_timeout}",
                "+in=in.bin", "+out=out.hex", "+in_cyc=in_cyc.hex", "+out_cyc=out_cyc.hex"]
        cmd = [str(binary)] + args if sim == "verilator" else ["vvp", "-n", str(binary)] + args
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=job, capture_output=True, text=True)
        seconds = time.time() - t0
        violation = [line for line in proc.stdout.splitlines() if line.startswith("HWGEN_BULK_PROTOCOL")]
        if violation:
            found = dict(kv.split("=") for kv in violation[0].split()[1:])
            rule, cycle = PROTOCOL_RULES[int(found["rule"])], int(found["cycle"])
            raise StreamProtocolError(f"{protocol_message('o', rule, cycle)} ({manifest['top']}, bulk testbench, {sim})")
        done = [line for line in proc.stdout.splitlines() if line.startswith("HWGEN_BULK_DONE")]
        if proc.returncode or not done:
            raise RuntimeError(f"bulk simulation failed ({sim}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        stats = dict(kv.split("=") for kv in done[0].split()[1:])
        if int(stats["k_out"]) != n_out:
            raise AssertionError(f"timeout: {stats['k_out']} of {n_out} output beats after {stats['cycles']} cycles")
        out_beats = _read_hex(job / "out.hex")
        outputs = out_beats if raw else unpack_beats(streams["o"]["fields"], out_beats)
        return {"outputs": outputs, "n_out": len(out_beats),
                "in_cycles": _read_hex(job / "in_cyc.hex"), "out_cycles": _read_hex(job / "out_cyc.hex"),
                "cycles": int(stats["cycles"]), "sim_seconds": seconds}
    finally:
        shutil.rmtree(job, ignore_errors=True)
