"""Streaming top-N per unit: the N images with the largest spatial max, ties broken by image index.

Memory is O(units x (N + chunk)), independent of the number of images.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

EMPTY_INDEX = np.iinfo(np.int64).max  # marks an unfilled slot; sorts after every real index


class TopN:
    """Running top-N of (units,) columns fed chunk by chunk in increasing image order."""

    def __init__(self, n_units: int, n: int) -> None:
        self.n = n
        self.index = np.full((n_units, n), EMPTY_INDEX, dtype=np.int64)
        self.value = np.full((n_units, n), -np.inf, dtype=np.float32)

    def update(self, chunk: np.ndarray, start: int) -> None:
        """Merge a (images, units) chunk whose first row is image `start`."""
        values = np.asarray(chunk, dtype=np.float32)
        rows, units = self._candidates(values)
        if rows.size == 0:
            return
        n_units = self.index.shape[0]
        picked = values[rows, units]
        picked[np.isnan(picked)] = -np.inf  # NaN ranks below every number
        all_unit = np.concatenate([np.repeat(np.arange(n_units), self.n), units])
        all_value = np.concatenate([self.value.ravel(), picked])
        all_index = np.concatenate([self.index.ravel(), rows.astype(np.int64) + start])
        order = np.lexsort((all_index, -all_value, all_unit))
        sorted_unit = all_unit[order]
        first = np.searchsorted(sorted_unit, np.arange(n_units))
        rank = np.arange(order.size) - first[sorted_unit]
        keep = order[rank < self.n]  # every unit has >= n entries (its current slots)
        self.index = all_index[keep].reshape(n_units, self.n)
        self.value = all_value[keep].reshape(n_units, self.n)

    def _candidates(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entries of the chunk that can enter some unit's top-N (all ties at the cut kept).

        A full unit only takes values strictly above its N-th (equal ones come later, so they
        lose the tie); NaN never compares greater. When that leaves many candidates (early
        chunks), each unit's N-th largest value in the chunk cuts them down first.
        """
        full = self.index[:, -1] != EMPTY_INDEX
        state_cut = np.where(full, self.value[:, -1], -np.inf).astype(np.float32)
        mask = (values > state_cut) | ~full
        n_rows = values.shape[0]
        if n_rows > self.n and np.count_nonzero(mask) > 4 * self.n * values.shape[1]:
            by_unit = np.ascontiguousarray(values.T)
            by_unit[np.isnan(by_unit)] = -np.inf
            chunk_cut = np.partition(by_unit, n_rows - self.n, axis=1)[:, n_rows - self.n]
            mask &= values >= chunk_cut
        return np.nonzero(mask)


def stream_topn(chunks: Iterable[tuple[int, np.ndarray]], n_units: int, n: int) -> TopN:
    """Top-N over (start, chunk) pairs given in increasing image order."""
    top = TopN(n_units, n)
    for start, chunk in chunks:
        top.update(chunk, start)
    return top


def topn_reference(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain in-memory top-N of an (images, units) array, for tests and small data."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=-np.inf)
    order = np.lexsort((np.arange(values.shape[0])[:, None].repeat(values.shape[1], 1),
                        -values), axis=0)[:n]
    return order.T.astype(np.int64), np.take_along_axis(values, order, 0).T
