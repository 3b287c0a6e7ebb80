"""The ablated forwards: a set's images, rendered once per batch, through the image tower once per
condition with its units silenced (a `trace`), answered against the cached prompt embeddings.

Resample mode takes each image's donor maps from one clean forward of the donor images per batch
(stopped after the last ablated block), shared by every condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from interp.ablation.effects import COSINE
from interp.ablation.modes import Silencer
from interp.ablation.selection import Condition
from interp.hooks import trace
from interp.inputs import Images, batch_to_input, default_workers
from interp.models import LoadedModel
from interp.naming.embeddings import encode_input
from interp.progress import bar

Answers = dict[str, dict[str, np.ndarray]]  # condition name -> template -> (n,) palette index


def donor_indices(n: int, seed: int = 0) -> np.ndarray:
    """Per image, another image of the first n (uniform, seeded; never itself)."""
    if n < 2:
        raise ValueError("resample mode needs at least two images")
    rng = np.random.default_rng(seed)
    return (np.arange(n) + rng.integers(1, n, n)) % n


def _union(conditions: Sequence[Condition]) -> dict[str, list[int]]:
    """Per block, every unit any condition silences (sorted)."""
    out: dict[str, set[int]] = {}
    for cond in conditions:
        for block, units in cond.by_block().items():
            out.setdefault(block, set()).update(units)
    return {block: sorted(units) for block, units in out.items()}


class Ablations:
    """The conditions of one mode, their unit indices on the device, ready to run on batches."""

    def __init__(self, loaded: LoadedModel, conditions: Sequence[Condition], mode: str,
                 fill: Mapping[str, np.ndarray] | None = None) -> None:
        device = loaded.device
        self.loaded, self.mode, self.conditions = loaded, mode, list(conditions)
        self.units = {c.name: {b: torch.tensor(u, device=device) for b, u in c.by_block().items()}
                      for c in self.conditions}
        self.union = _union(self.conditions)
        where = {b: {u: i for i, u in enumerate(us)} for b, us in self.union.items()}
        # per condition and block, its units' places among the union (the donor maps' channels)
        self.places = {c.name: {b: torch.tensor([where[b][u] for u in us], device=device)
                                for b, us in c.by_block().items()} for c in self.conditions}
        self.fill = {c.name: {b: torch.as_tensor(np.asarray(fill[b])[us], device=device)
                              for b, us in c.by_block().items()}
                     for c in self.conditions} if mode == "mean" else {}

    def donor_maps(self, x: torch.Tensor, dtype: str) -> dict[str, torch.Tensor]:
        """The union's maps of the donor images `x`, from a clean forward stopped after the
        last ablated block."""
        maps: dict[str, torch.Tensor] = {}
        picks = {b: torch.tensor(us, device=x.device) for b, us in self.union.items()}

        def keep(name: str, out: torch.Tensor) -> None:
            maps[name] = out.index_select(1, picks[name])

        modules = {b: self.loaded.blocks[b] for b in self.union}
        with trace(modules, keep, stop=True):
            encode_input(self.loaded, x, dtype)
        return maps

    def silencer(self, name: str, donors: Mapping[str, torch.Tensor]) -> Silencer:
        donor = {b: donors[b].index_select(1, p) for b, p in self.places[name].items()} \
            if self.mode == "resample" else {}
        return Silencer(self.mode, self.units[name], self.fill.get(name, {}), donor)

    def embed(self, name: str, x: torch.Tensor, dtype: str,
              donors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N, D) unit-norm embeddings of the batch under one condition, on the CPU."""
        modules = {b: self.loaded.blocks[b] for b in self.units[name]}
        with trace(modules, self.silencer(name, donors)):
            return encode_input(self.loaded, x, dtype).cpu()


def ablated_answers(loaded: LoadedModel, stim_set, n: int, conditions: Sequence[Condition],
                    mode: str, texts: Mapping[str, torch.Tensor], *,
                    fill: Mapping[str, np.ndarray] | None = None, clean=None,
                    batch_size: int = 64, dtype: str = "float32", workers: int | None = None,
                    seed: int = 0, desc: str = "") -> Answers:
    """Answers of every condition on the first n images of the set, per template of `texts`
    ((11, D) prompt embeddings on the CPU): each batch is rendered once and run once per
    condition. Batches start at multiples of `batch_size`, as the naming cache encodes them.
    With `clean`, the unablated (images, D) embeddings, also each image's cosine to its own
    unablated embedding (key COSINE): how far the ablation moved it, answers changed or not."""
    plan = Ablations(loaded, conditions, mode, fill)
    answers = {c.name: {t: np.empty(n, dtype=np.int64) for t in texts} for c in conditions}
    if clean is not None:
        for c in conditions:
            answers[c.name][COSINE] = np.empty(n, dtype=np.float32)
    donors = donor_indices(n, seed) if mode == "resample" else None
    batches = [list(range(a, min(a + batch_size, n))) for a in range(0, n, batch_size)]
    sampler = batches if donors is None else [b + donors[b].tolist() for b in batches]
    workers = default_workers(loaded.device) if workers is None else workers
    loader = torch.utils.data.DataLoader(Images(stim_set), batch_sampler=sampler,
                                         num_workers=workers,
                                         pin_memory=loaded.device.type == "cuda")
    with torch.no_grad():
        for rows, (images, _index) in bar(zip(batches, loader, strict=True), total=len(batches),
                                          desc=desc or f"ablate {stim_set.name}", unit="batch"):
            x = batch_to_input(images, loaded, loaded.device)
            maps = {} if donors is None else plan.donor_maps(x[len(rows):], dtype)
            x, a, b = x[:len(rows)], rows[0], rows[-1] + 1
            unablated = None if clean is None else torch.from_numpy(np.asarray(clean[a:b]))
            for cond in conditions:
                emb = plan.embed(cond.name, x, dtype, maps)
                for template, text in texts.items():
                    answers[cond.name][template][a:b] = (emb @ text.T).argmax(dim=1).numpy()
                if unablated is not None:
                    answers[cond.name][COSINE][a:b] = (emb * unablated).sum(dim=1).numpy()
    return answers
