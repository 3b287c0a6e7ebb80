"""Exact nearest neighbours under cosine similarity, blockwise on the device: approximate search
would add disagreements of its own to the ones the probes look for.

Embeddings are unit-norm rows, so cosine is a dot product; a query is never its own neighbour,
and ties are broken by the lower index so that results do not depend on the block size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp.errors import UsageError

#: Query rows per block: block x N similarities are held at once (4096 x 100k floats = 1.6 GB).
BLOCK_ROWS = 1024
#: Similarities counted at once by the CPU's cross ranks (1 MB of floats, inside the cache).
RANK_TILE = 2**18


@dataclass
class Neighbours:
    """Per query, its k nearest rows (`index`, nearest first) and their cosine (`sim`)."""

    index: np.ndarray  # (N, k) int64
    sim: np.ndarray    # (N, k) float32


def check_k(k: int, n: int) -> None:
    if not 1 <= k < n:
        raise UsageError(f"--k {k}: needs 1 <= k < the number of images ({n}); "
                         "give a smaller --k or more images")


def _blocks(n: int, rows: int):
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


def _similarities(emb: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Cosine of rows start:stop with every row, a query's own entry set to -inf."""
    sim = emb[start:stop] @ emb.T
    own = torch.arange(start, stop, device=emb.device)
    sim[own - start, own] = float("-inf")
    return sim


def _top(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest per row, ties to the lower index (a stable sort of a few extra)."""
    extra = min(sim.shape[1], k + 8)
    values, index = sim.topk(extra, dim=1)
    # among the candidates, order by (-sim, index); entries tied with the k-th beyond the
    # candidates are vanishingly rare for float embeddings
    order = np.lexsort((index.cpu().numpy(), -values.float().cpu().numpy()), axis=1)[:, :k]
    order = torch.from_numpy(order).to(sim.device)
    return values.gather(1, order), index.gather(1, order)


def _as_tensor(emb: np.ndarray | torch.Tensor, device: str | torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(emb, dtype=np.float32) if not torch.is_tensor(emb)
                           else emb.float()).to(device)


@torch.no_grad()
def nearest(emb: np.ndarray | torch.Tensor, k: int, *, device: str | torch.device = "cpu",
            block_rows: int = BLOCK_ROWS) -> Neighbours:
    """Exact top-k neighbours of every row of `emb` (N, D) among the other rows."""
    x = _as_tensor(emb, device)
    check_k(k, len(x))
    index = np.empty((len(x), k), dtype=np.int64)
    sim = np.empty((len(x), k), dtype=np.float32)
    for start, stop in _blocks(len(x), block_rows):
        values, idx = _top(_similarities(x, start, stop), k)
        index[start:stop], sim[start:stop] = idx.cpu().numpy(), values.cpu().numpy()
    return Neighbours(index, sim)


@dataclass
class Comparison:
    """Neighbours of each query in two embedding spaces, and where each space's neighbours lie
    in the other: `a_rank_in_b[i, j]` is the rank (1 = nearest) under b of a's j-th neighbour of
    query i, `a_sim_in_b` its cosine under b (and the same for b's neighbours under a)."""

    a: Neighbours
    b: Neighbours
    a_rank_in_b: np.ndarray
    a_sim_in_b: np.ndarray
    b_rank_in_a: np.ndarray
    b_sim_in_a: np.ndarray


def _ranks(sim: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank (1 = nearest, ties to the lower index) and cosine in `sim` of the columns `index`,
    on the CPU a few rows at a time: the k counting passes then stay in cache (5x faster at
    100k columns)."""
    rows = len(sim) if sim.is_cuda else max(1, RANK_TILE // sim.shape[1])
    parts = [_ranks_of_rows(sim[a:a + rows], index[a:a + rows]) for a in range(0, len(sim), rows)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _ranks_of_rows(sim: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """1 + the entries above each target, one neighbour column at a time (counting beats
    sorting each row), plus, where another entry has the same cosine, the tied ones at a lower
    column."""
    target = sim.gather(1, index)
    rank = torch.empty_like(index)
    cols = torch.arange(sim.shape[1], device=sim.device)
    for j in range(index.shape[1]):
        value = target[:, j:j + 1]
        above = torch.count_nonzero(sim > value, dim=1)
        level = torch.count_nonzero(sim >= value, dim=1)
        rank[:, j] = above + 1
        for r in (level - above > 1).nonzero().flatten().tolist():
            rank[r, j] += int(((sim[r] == value[r]) & (cols < index[r, j])).sum())
    return rank, target


@torch.no_grad()
def compare(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, k: int, *,
            device: str | torch.device = "cpu", block_rows: int = 256,
            queries: range | None = None) -> Comparison:
    """Exact top-k of every query under both embeddings of the same images, in one pass over
    the similarity matrices, with the cross ranks; `queries` (a contiguous range, default all
    rows) computes only those, e.g. one shard of a large corpus, their rows in order."""
    xa, xb = _as_tensor(a, device), _as_tensor(b, device)
    if len(xa) != len(xb):
        raise ValueError(f"the two embeddings cover {len(xa)} and {len(xb)} images")
    check_k(k, len(xa))
    queries = range(len(xa)) if queries is None else queries
    if queries.step != 1 or not 0 <= queries.start <= queries.stop <= len(xa):
        raise ValueError(f"queries {queries}: give a contiguous range of rows of {len(xa)}")
    n = len(queries)
    out = {name: np.empty((n, k), dtype=dt) for name, dt in (
        ("ai", np.int64), ("as", np.float32), ("bi", np.int64), ("bs", np.float32),
        ("arb", np.int64), ("asb", np.float32), ("bra", np.int64), ("bsa", np.float32))}
    for start, stop in _blocks(n, block_rows):
        first, last = queries[start], queries[stop - 1] + 1
        sa, sb = _similarities(xa, first, last), _similarities(xb, first, last)
        va, ia = _top(sa, k)
        vb, ib = _top(sb, k)
        rab, vab = _ranks(sb, ia)
        rba, vba = _ranks(sa, ib)
        for name, t in (("ai", ia), ("as", va), ("bi", ib), ("bs", vb), ("arb", rab),
                        ("asb", vab), ("bra", rba), ("bsa", vba)):
            out[name][start:stop] = t.cpu().numpy()
    return Comparison(Neighbours(out["ai"], out["as"]), Neighbours(out["bi"], out["bs"]),
                      out["arb"], out["asb"], out["bra"], out["bsa"])
