"""A unit (or a whole system) behind the reliable bridge (`hwgen.system.link.LinkedUnit`, protocol version 2) in
Verilator, driven by the Python host `sw_model.host.link.LinkHost` as it runs.

The generated testbench reads one request at a time from a named pipe (the line's bits, faults included, one per
bit time of `divisor` cycles), drives them on `rx`, samples `tx` into bytes, and once the line has been quiet for
`quiet` bit times writes the answer bytes back through a second pipe. A request can also reset the whole board.
`VerilatorPort` is the `exchange` port LinkHost expects; simulated cycles are counted in `cycles`.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hwgen.cache import build_root
from hwgen.flow.generate import build_component
from hwgen.sim.bulk import compile_testbench
from hwgen.sim.uart_bulk import hashed_verilog
from hwgen.system.link import LinkedUnit

TESTBENCH = """`timescale 1ns/1ps
module hwgen_link_tb;
  localparam DIV = {divisor}, QUIET = {quiet};
  reg clk = 0, rst = 1, brst = 0, rx = 1;
  wire tx;
  reg [1023:0] in_name, out_name;
  reg [7:0] rxq [0:65535];
  reg [7:0] byte_in;
  integer fin, fout, c, n, i, j, cycle, nrx, start, last, deadline, rx_busy;
  {top} dut (.clk(clk), .rst(rst | brst), .rx(rx), .tx(tx));
  always #5 clk = ~clk;
  always @(posedge clk) cycle <= cycle + 1;
  task tick(input integer t);
    begin repeat (t) @(posedge clk); #1; end
  endtask
  initial begin : receiver
    nrx = 0; rx_busy = 0;
    tick(6);
    forever begin
      if (tx == 0) begin
        rx_busy = 1;
        tick(DIV / 2);
        for (j = 0; j < 8; j = j + 1) begin tick(DIV); byte_in[j] = tx; end
        tick(DIV);
        rxq[nrx[15:0]] = byte_in;
        nrx = nrx + 1;
        last = cycle;
        rx_busy = 0;
      end else tick(1);
    end
  end
  initial begin : host
    if (!$value$plusargs("in=%s", in_name) || !$value$plusargs("out=%s", out_name)) begin
      $display("HWGEN_LINK_ERROR missing plusargs"); $finish;
    end
    cycle = 0; last = 0;
    fin = $fopen(in_name, "r");
    fout = $fopen(out_name, "w");
    tick(4); rst = 0; tick(2);
    forever begin
      c = $fgetc(fin);
      while (c == 10 || c == 32) c = $fgetc(fin);
      if (c == -1 || c == "Q") begin $fclose(fout); $finish; end
      if (c == "R") begin brst = 1; tick(2); brst = 0; end
      else begin                                   // "X <bits> <max cycles>\\n<bits as 0/1 characters>"
        i = $fscanf(fin, "%d %d", n, deadline);
        start = nrx;
        c = $fgetc(fin);
        for (i = 0; i < n; i = i + 1) begin
          c = $fgetc(fin);
          rx = (c == "1");
          tick(DIV);
        end
        rx = 1;
        last = cycle;
        deadline = cycle + deadline;
        while ((rx_busy || cycle - last < QUIET * DIV) && cycle < deadline) tick(DIV);
        $fdisplay(fout, "%0d %0d", nrx - start, cycle);
        for (i = start; i < nrx; i = i + 1) $fdisplay(fout, "%02x", rxq[i[15:0]]);
        $fflush(fout);
      end
    end
  end
endmodule
"""


@functools.lru_cache(maxsize=None)
def _linked_verilog(config, divisor: int, timeout: int) -> tuple[Path, str]:
    from amaranth.back import verilog

    top = f"linked_{config.unit}"
    text = verilog.convert(LinkedUnit(build_component(config), divisor=divisor, timeout=timeout), name=top,
                           emit_src=False)
    return hashed_verilog(text, "linked", top), top


class VerilatorPort:
    """LinkHost's port onto `config` behind `LinkedUnit` in Verilator. `down`/`up`: `sw_model.host.link.LineFaults`
    of each direction (the up faults act on the bytes the testbench sampled); `reset_at`: exchanges before which
    the whole board resets. Use as a context manager (it owns a simulator process)."""

    def __init__(self, config, down, up, *, divisor: int = 4, quiet_bits: int = 30, reset_at=()):
        self.down, self.up, self.reset_at, self.divisor = down, up, set(reset_at), divisor
        verilog, top = _linked_verilog(config, divisor, 20 * divisor)
        tb = TESTBENCH.format(divisor=divisor, quiet=quiet_bits, top=top)
        self.binary = compile_testbench(tb, "hwgen_link_tb", verilog, "verilator", "link")
        self.dir = Path(tempfile.mkdtemp(prefix="link-", dir=build_root()))
        fin, fout = self.dir / "to_sim", self.dir / "from_sim"
        os.mkfifo(fin)
        os.mkfifo(fout)
        self.proc = subprocess.Popen([str(self.binary), f"+in={fin}", f"+out={fout}"], cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.to_sim = open(fin, "w")
        self.from_sim = open(fout)
        self.exchanges, self.cycles = 0, 0

    def exchange(self, data: bytes, answer_bytes: int) -> bytes:
        if self.exchanges in self.reset_at:
            self.to_sim.write("R\n")
        self.exchanges += 1
        bits = self.down.bits(data)
        budget = (len(bits) + 10 * (answer_bytes + 40)) * self.divisor
        self.to_sim.write(f"X {len(bits)} {budget}\n{''.join(map(str, bits))}\n")
        self.to_sim.flush()
        head = self.from_sim.readline().split()
        if len(head) != 2:
            raise RuntimeError(f"link simulation ended: {self.proc.stdout.read()[-2000:] if self.proc.stdout else ''}")
        n, self.cycles = int(head[0]), int(head[1])
        got = bytes(int(self.from_sim.readline(), 16) for _ in range(n))
        return self.up.transmit(got)[0]

    def close(self):
        try:
            self.to_sim.write("Q\n")
            self.to_sim.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.from_sim.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
