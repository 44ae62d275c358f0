"""pytest options for the RTL benches: --sim verilator|icarus, --waves."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--sim", default="verilator", choices=("verilator", "icarus"),
                     help="simulator for the cocotb benches (default: verilator)")
    parser.addoption("--waves", action="store_true",
                     help="dump waveforms into the cache's runs/ folder (off by default)")


@pytest.fixture
def sim_opts(request):
    """Keyword arguments for harness.run_vectors chosen on the command line."""
    return {"sim": request.config.getoption("--sim"), "waves": request.config.getoption("--waves")}
