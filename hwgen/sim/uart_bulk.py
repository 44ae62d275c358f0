"""A unit (or a whole system) behind the UART bridge, driven byte by byte at the bit level inside the simulator.

The generated testbench holds the host's bytes and sends each one on `rx` as an 8N1 frame of `divisor` cycles per
bit; a receiver model samples `tx` in the middle of each bit and stores the reply bytes. Byte k is sent only once
`wait[k]` reply bytes have arrived: that is how the host paces a link whose bridge buffers one beat (it waits for
an answer before it sends past a command that keeps the unit busy). No Python runs during the simulation.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from hwgen.cache import build_root
from hwgen.flow.generate import build_component
from hwgen.sim.bulk import compile_testbench
from hwgen.system.bridge import BridgedUnit

TESTBENCH = """`timescale 1ns/1ps
module hwgen_uart_tb;
  localparam DEPTH = {depth}, DIV = {divisor};
  reg clk = 0, rst = 1, rx = 1;
  wire tx;
  reg [7:0] in_mem [0:DEPTH-1];
  reg [31:0] wait_mem [0:DEPTH-1];
  reg [7:0] out_mem [0:DEPTH-1];
  reg [1023:0] in_file, wait_file, out_file;
  reg [7:0] byte_in;
  integer n_in, n_out, max_cycles, k_in, k_out, cycle, i, j;
  {top} dut (.clk(clk), .rst(rst), .rx(rx), .tx(tx));
  always #5 clk = ~clk;
  always @(posedge clk) cycle <= cycle + 1;
  task tick(input integer n);
    begin repeat (n) @(posedge clk); #1; end
  endtask
  initial begin
    if (!$value$plusargs("n_in=%d", n_in) || !$value$plusargs("n_out=%d", n_out) ||
        !$value$plusargs("max_cycles=%d", max_cycles) || !$value$plusargs("in=%s", in_file) ||
        !$value$plusargs("wait=%s", wait_file) || !$value$plusargs("out=%s", out_file)) begin
      $display("HWGEN_UART_ERROR missing plusargs"); $finish;
    end
    $readmemh(in_file, in_mem, 0, n_in - 1);
    $readmemh(wait_file, wait_mem, 0, n_in - 1);
    k_in = 0; k_out = 0; cycle = 0;
    tick(4); rst = 0; tick(2);
    while (k_in < n_in && cycle < max_cycles) begin
      if (k_out >= wait_mem[k_in]) begin
        rx = 0; tick(DIV);
        for (i = 0; i < 8; i = i + 1) begin rx = in_mem[k_in][i]; tick(DIV); end
        rx = 1; tick(DIV);
        k_in = k_in + 1;
      end else tick(1);
    end
  end
  initial begin : receiver
    tick(6);
    forever begin
      if (tx == 0) begin
        tick(DIV / 2);
        for (j = 0; j < 8; j = j + 1) begin tick(DIV); byte_in[j] = tx; end
        tick(DIV);
        out_mem[k_out] = byte_in;
        k_out = k_out + 1;
      end else tick(1);
    end
  end
  initial begin
    tick(8);
    while (k_out < n_out && cycle < max_cycles) tick(1);
    tick(2);
    $writememh(out_file, out_mem, 0, (k_out > 0 ? k_out : 1) - 1);
    $display("HWGEN_UART_DONE k_in=%0d k_out=%0d cycles=%0d", k_in, k_out, cycle);
    $finish;
  end
endmodule
"""


@functools.lru_cache(maxsize=None)
def _bridged_verilog(config, divisor: int) -> tuple[Path, str]:
    """The config's design behind hwgen.system.bridge, generated once per process (the file is named by a hash of its
    text, so a changed generator never reuses a stale file)."""
    from amaranth.back import verilog

    top = f"bridged_{config.unit}"
    unit = BridgedUnit(build_component(config), divisor=divisor, timeout=64 * divisor)
    return hashed_verilog(verilog.convert(unit, name=top, emit_src=False), "bridged", top), top


def hashed_verilog(text: str, folder: str, top: str) -> Path:
    """Verilog `text` stored once as <build root>/<folder>/<top>-<hash of the text>.v (written atomically)."""
    path = build_root() / folder / f"{top}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.v"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{uuid.uuid4().hex[:6]}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def run_uart(config, data: bytes, wait: list[int], n_reply: int, *, divisor: int = 4,
             sim: str = "verilator") -> dict:
    """Send `data` over the simulated serial line (byte k after `wait[k]` reply bytes); returns the reply bytes,
    the simulated cycles and the wall-clock seconds. Raises if fewer than `n_reply` bytes come back."""
    if len(wait) != len(data):
        raise ValueError(f"wait: got {len(wait)} entries, allowed: one per byte ({len(data)})")
    verilog, top = _bridged_verilog(config, divisor)
    depth = max(1 << 16, 1 << (max(len(data), n_reply, 1) - 1).bit_length())
    binary = compile_testbench(TESTBENCH.format(depth=depth, divisor=divisor, top=top), "hwgen_uart_tb", verilog,
                               sim, "uart")
    job = build_root() / "jobs" / f"uart-{uuid.uuid4().hex[:12]}"
    job.mkdir(parents=True)
    try:
        (job / "in.hex").write_text("\n".join(f"{b:02x}" for b in data) + "\n")
        (job / "wait.hex").write_text("\n".join(f"{w:08x}" for w in wait) + "\n")
        bits = 10 * divisor * (len(data) + n_reply)
        args = [f"+n_in={len(data)}", f"+n_out={n_reply}", f"+max_cycles={2 * bits + 100_000}",
                "+in=in.hex", "+wait=wait.hex", "+out=out.hex"]
        cmd = [str(binary)] + args if sim == "verilator" else ["vvp", "-n", str(binary)] + args
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=job, capture_output=True, text=True)
        seconds = time.time() - t0
        done = [line for line in proc.stdout.splitlines() if line.startswith("HWGEN_UART_DONE")]
        if proc.returncode or not done:
            raise RuntimeError(f"UART simulation failed ({sim}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        stats = dict(kv.split("=") for kv in done[0].split()[1:])
        if int(stats["k_out"]) < n_reply:
            raise RuntimeError(f"UART simulation: {stats['k_out']} of {n_reply} reply bytes after "
                               f"{stats['cycles']} cycles ({stats['k_in']} of {len(data)} bytes sent)")
        replies = [int(t, 16) for line in (job / "out.hex").read_text().splitlines()
                   for t in line.split("//")[0].split()]
        return {"replies": bytes(replies[:int(stats["k_out"])]), "cycles": int(stats["cycles"]),
                "sim_seconds": seconds}
    finally:
        shutil.rmtree(job, ignore_errors=True)
