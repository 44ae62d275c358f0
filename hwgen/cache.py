"""Where hwgen keeps what it can rebuild: generated designs, simulator builds (keyed by content hash), bulk
testbenches, synthesis work folders, board builds and trained reference models.

Default: a per-user cache folder, `$XDG_CACHE_HOME/hwgen` (`~/.cache/hwgen`), so the installed package works from
any folder and never writes into site-packages. `hwgen --build-dir DIR` (which sets `HWGEN_BUILD_DIR` so that
simulator and test-worker processes see the same folder) overrides it. `hwgen cache` shows its size;
`hwgen cache --clear` empties it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "HWGEN_BUILD_DIR"


def build_root() -> Path:
    """The cache folder (created on first use)."""
    if os.environ.get(ENV):
        root = Path(os.environ[ENV]).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "hwgen"
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def set_build_root(path) -> Path:
    """Use `path` as the cache folder in this process and in the processes it starts."""
    os.environ[ENV] = str(Path(path).expanduser().resolve())
    return build_root()


def cache_size(root: Path | None = None) -> tuple[int, int]:
    """(bytes, files) under the cache folder."""
    total = files = 0
    for p in (root or build_root()).rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
            files += 1
    return total, files


def clear_cache(root: Path | None = None) -> None:
    """Delete everything in the cache folder (the folder itself stays)."""
    root = root or build_root()
    for p in root.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
