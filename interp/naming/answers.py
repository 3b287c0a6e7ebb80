"""A model's zero-shot answers on the stimulus sets: cached image embeddings x prompt embeddings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import zarr

from interp.errors import UsageError
from interp.models import DEFAULT_MODEL, LoadedModel, load_model
from interp.naming.embeddings import EmbeddingCache, image_embeddings, require_text_tower
from interp.naming.experiments import EXPERIMENTS
from interp.rundir import MODEL_KEYS, RunDir

PREDICT_ROWS = 65536  # embeddings read per block when predicting (256 MB at 1024 floats)


def run_model(run: RunDir, given: dict | None = None) -> dict:
    """The run's recorded model, else `given`, else RN50/openai; given settings must agree."""
    recorded = {k: v for k, v in run.read().get("model_settings", {}).items()
                if k in MODEL_KEYS and v is not None}
    given = {k: v for k, v in (given or {}).items() if v is not None}
    settings = {**DEFAULT_MODEL, **recorded, **given}
    run.check_settings("model_settings", settings)
    return settings


#: `limit` left out: the images of the run's naming of the experiment (None means "no limit").
FROM_NAMING = "from-naming"


def naming_settings(run: RunDir, experiment: int | None, samples_per_combo: int | None,
                    limit, dtype: str | None) -> dict:
    """samples_per_combo, limit, dtype: as given, else those of the run's naming of the
    experiment (so the answers of its table are the ones explained), else the usual defaults."""
    recorded = run.read().get("naming", {}).get(f"exp{experiment}", {})
    if experiment is not None and not recorded and limit == FROM_NAMING:
        raise UsageError(f"experiment {experiment} has not been run in {run.path}: run "
                         f"`chromadissect naming --experiments {experiment}` first, or give "
                         "--limit (and --samples-per-combo) for the images to encode here")
    given = {"samples_per_combo": samples_per_combo, "limit": limit, "dtype": dtype}
    defaults = {"samples_per_combo": 500, "limit": None, "dtype": "float32"}
    return {key: recorded.get(key, defaults[key]) if value in (None, FROM_NAMING) else value
            for key, value in given.items()}


@dataclass
class Naming:
    """Answers of one model on the stimulus sets, one template at a time (memoised)."""

    loaded: LoadedModel
    sets: dict[str, object]  # whole sets (no limit): the cache spans them
    cache: EmbeddingCache
    limit: int | None = None
    batch_size: int = 64
    dtype: str = "float32"
    workers: int | None = None
    _images: dict[str, zarr.Array] = field(default_factory=dict)
    _texts: dict[str, torch.Tensor] = field(default_factory=dict)
    _answers: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def size(self, set_name: str) -> int:
        """Number of images used from the set: all, or the first `limit`."""
        n = len(self.sets[set_name])
        return n if self.limit is None else min(n, self.limit)

    def labels(self, set_name: str) -> dict[str, np.ndarray]:
        """The set's labels, cut to the images used."""
        n = self.size(set_name)
        return {kind: values[:n] for kind, values in self.sets[set_name].labels().items()}

    def embeddings(self, set_name: str) -> zarr.Array:
        """The set's cached image embeddings (rows beyond size() may be unset)."""
        if set_name not in self._images:
            self._images[set_name] = image_embeddings(
                self.loaded, self.sets[set_name], self.size(set_name), self.cache,
                batch_size=self.batch_size, dtype=self.dtype, workers=self.workers)
        return self._images[set_name]

    def similarities(self, set_name: str, template: str, index: list[int]) -> torch.Tensor:
        """(len(index), 11) cosine similarity of these images with each colour prompt."""
        rows = self.embeddings(set_name).get_orthogonal_selection((np.asarray(index), slice(None)))
        return torch.from_numpy(rows) @ self.text(template).T

    def text(self, template: str) -> torch.Tensor:
        """(11, D) unit-norm prompt embeddings of a template, on the CPU (memoised)."""
        if template not in self._texts:
            self._texts[template] = self.cache.prompts(self.loaded, template, self.dtype)
        return self._texts[template]

    def predict(self, set_name: str, template: str) -> np.ndarray:
        """Palette index of the best-matching prompt, per image used; read in blocks of rows."""
        key = (set_name, template)
        if key not in self._answers:
            emb, n, text = self.embeddings(set_name), self.size(set_name), self.text(template)
            answers = np.empty(n, dtype=np.int64)
            for a in range(0, n, PREDICT_ROWS):
                block = torch.from_numpy(emb[a:min(a + PREDICT_ROWS, n)])
                answers[a:a + len(block)] = (block @ text.T).argmax(dim=1).numpy()
            self._answers[key] = answers
        return self._answers[key]


def open_naming(run: RunDir, numbers: list[int], *, model: dict | None = None,
                loaded: LoadedModel | None = None, samples_per_combo: int = 500,
                limit: int | None = None, batch_size: int = 64, device: str = "cpu",
                dtype: str = "float32", workers: int | None = None) -> Naming:
    """The run's model (loaded here unless given) and the sets the chosen experiments need."""
    from stimuli import get_set

    if loaded is None:
        loaded = load_model(**run_model(run, model), device=device)
    require_text_tower(loaded)
    names = sorted({EXPERIMENTS[n].set_name for n in numbers})
    seed = run.read().get("seeds", {}).get("stimuli", 0)
    sets = {name: get_set(name, samples_per_combo=samples_per_combo,
                          image_size=loaded.image_size, seed=seed) for name in names}
    cache = EmbeddingCache(run.naming_embeddings)
    return Naming(loaded, sets, cache, limit, batch_size, dtype, workers)
