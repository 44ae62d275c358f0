"""Progress bars for long runs (network runs, sweeps, result pages, builds): tqdm, with rate and time left on a
terminal and silent when the output is not one (CI logs, pipes)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress(total: int | None = None, desc: str = "", unit: str = "it", **kwargs) -> tqdm:
    """A bar on stderr; `disable=None` makes tqdm draw it only when stderr is a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True,
                leave=False, **kwargs)
