"""The package as `pip install` gives it: a wheel built from this checkout, installed with its dev extras into a
fresh virtual environment, used from an unrelated folder. Catches a module or data file missing from the wheel,
code that reaches the checkout (sys.path, __file__ parents) and output written into site-packages.

Takes 3-5 minutes (the venv install comes from pip's cache; the RTL and tool runs use the shared build cache)."""
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(argv, cwd, env, timeout=900):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} -> {proc.returncode}\n{proc.stdout[-2000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("installed")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)], tmp,
         os.environ.copy())
    wheel = next((tmp / "dist").glob("hwgen-*.whl"))
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{tmp / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([py, "-m", "pip", "install", "-q", f"hwgen[dev] @ {wheel.as_uri()}"], tmp, env)
    work = tmp / "elsewhere"
    work.mkdir()
    return {"wheel": wheel, "py": py, "env": env, "work": work, "venv": tmp / "venv",
            "files": _package_files(tmp / "venv")}


def _package_files(venv_dir: Path) -> set[Path]:
    site = next((venv_dir / "lib").glob("python3*/site-packages"))
    return {p for pkg in ("hwgen", "sw_model") for p in (site / pkg).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_wheel_holds_every_module_and_board(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    sources = {str(p.relative_to(ROOT)) for pkg in ("hwgen", "sw_model") for p in (ROOT / pkg).rglob("*")
               if p.suffix in (".py", ".toml", ".tflite") and "__pycache__" not in p.parts}
    assert sources and not sources - names, f"missing from the wheel: {sorted(sources - names)}"


def test_commands_work_from_an_unrelated_folder(installed):
    py, env, work = installed["py"], installed["env"], installed["work"]
    where = _run([py, "-c", "import hwgen, sw_model; print(hwgen.__file__); print(sw_model.__file__)"], work, env)
    assert all(line.startswith(str(installed["venv"])) for line in where.split()), where
    hwgen = [str(installed["venv"] / "bin" / "hwgen")]
    assert "wrote gen/lmul_e4m3.v" in _run(hwgen + ["generate", "lmul-e4m3", "-o", "gen"], work, env)
    assert "lmul-e4m3: clean" in _run(hwgen + ["lint", "lmul-e4m3"], work, env)
    out = _run(hwgen + ["run", "digits-mlp", "--backend", "rtl", "--limit", "64", "-o", "run"], work, env)
    assert "mismatches vs golden: 0" in out
    out = _run(hwgen + ["run", "digits-snn", "--backend", "board", "--limit", "2", "-o", "run"], work, env)
    assert "mismatches vs golden: 0" in out
    out = _run(hwgen + ["build", "icebreaker", "--config", "lmul-e4m3", "-o", "bits"], work, env)
    assert (work / "bits" / "lmul-e4m3-icebreaker.bin").stat().st_size > 0, out
    assert "| lmul-e4m3 | ecp5 |" in _run(hwgen + ["report", "lmul-e4m3"], work, env)
    assert "files" in _run(hwgen + ["cache"], work, env)
    written = _package_files(installed["venv"]) - installed["files"]
    assert not written, f"written into site-packages: {sorted(written)}"


def test_hwgen_test_outside_a_checkout_says_where_the_tests_are(installed):
    proc = subprocess.run([str(installed["venv"] / "bin" / "hwgen"), "test"], cwd=installed["work"],
                          env=installed["env"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "runs the regression of a source checkout" in proc.stderr and "Traceback" not in proc.stderr
