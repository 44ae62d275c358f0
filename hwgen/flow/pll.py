"""The ECP5 PLL (EHXPLLL) that makes a board's core clock from its oscillator.

`ecp5_pll_params` picks the dividers (the ranges of Lattice TN1263 as Project Trellis's `ecppll` uses them: input
divider 1..128, feedback divider 1..80, output divider 1..128, phase-detector input 3.125..400 MHz, VCO 400..800
MHz, output 3.125..400 MHz). `Ecp5Pll` instantiates the PLL with CLKOP fed back; the board top makes its `sync`
domain from the output, held in reset until the PLL has locked.
"""
from __future__ import annotations

from amaranth.hdl import Elaboratable, Instance, Module, Signal

PFD_HZ = (3.125e6, 400e6)
VCO_HZ = (400e6, 800e6)
OUT_HZ = (3.125e6, 400e6)


def ecp5_pll_params(in_hz: int, out_hz: int) -> dict:
    """Dividers that make exactly `out_hz` from `in_hz`, with the VCO nearest the middle of its range (600 MHz,
    as Trellis's `ecppll` picks for 25 -> 100 MHz).

    Returns {CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE, vco_hz, out_hz}; raises ValueError naming the
    frequency when no divider setting gives it exactly."""
    if not OUT_HZ[0] <= out_hz <= OUT_HZ[1]:
        raise ValueError(f"core_hz: got {out_hz}, allowed: {OUT_HZ[0]:.0f} .. {OUT_HZ[1]:.0f} Hz (ECP5 PLL output)")
    best = None
    for ref in range(1, 129):
        pfd = in_hz / ref
        if not PFD_HZ[0] <= pfd <= PFD_HZ[1]:
            continue
        for fb in range(1, 81):
            if in_hz * fb != out_hz * ref:             # CLKOP feedback: out = in * fb / ref, exactly
                continue
            for op in range(1, 129):
                vco = out_hz * op
                mid = (VCO_HZ[0] + VCO_HZ[1]) / 2
                if VCO_HZ[0] <= vco <= VCO_HZ[1] and (best is None or abs(vco - mid) < abs(best["vco_hz"] - mid)):
                    best = {"CLKI_DIV": ref, "CLKFB_DIV": fb, "CLKOP_DIV": op, "CLKOP_CPHASE": (op - 1) // 2,
                            "vco_hz": vco, "out_hz": out_hz}
    if best is None:
        raise ValueError(f"core_hz: got {out_hz}, allowed: a frequency the ECP5 PLL makes exactly from {in_hz} Hz "
                         f"(in * feedback / reference divider, e.g. {in_hz * 4} Hz)")
    return best


class Ecp5Pll(Elaboratable):
    """An EHXPLLL: `clk_in` (the oscillator, `in_hz`) -> `clk_out` at `out_hz` (CLKOP, fed back); `locked` is its
    lock output (asynchronous to both clocks)."""

    def __init__(self, clk_in, clk_out, in_hz: int, out_hz: int):
        self.clk_in, self.clk_out, self.in_hz, self.out_hz = clk_in, clk_out, in_hz, out_hz
        self.params = ecp5_pll_params(in_hz, out_hz)
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.in_hz / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{self.out_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB", p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=self.clk_out, i_CLKFB=self.clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, o_LOCK=self.locked)
        return m
