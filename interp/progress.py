"""Progress bars: shown on a terminal, never in log files (tqdm disable=None), off on request."""

from __future__ import annotations

from tqdm import tqdm

#: False after `--no-progress` (or `set_enabled(False)` in a notebook).
ENABLED = True


def set_enabled(enabled: bool) -> None:
    global ENABLED
    ENABLED = enabled


def bar(iterable=None, *, hide: bool = False, **kwargs) -> tqdm:
    """A tqdm bar that stays out of non-terminal stderr (logs, CI) and obeys `--no-progress`;
    `hide` for bars only one process of several should draw."""
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=True if hide or not ENABLED else None, **kwargs)
