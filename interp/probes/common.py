"""What both probes share: the corpus from the options, the run's model, the embedding cache."""

from __future__ import annotations

import logging
from pathlib import Path

from interp.embeddings import EmbeddingCache
from interp.errors import UsageError
from interp.models import LoadedModel, load_model
from interp.rundir import RunDir

log = logging.getLogger(__name__)


def open_corpus(images: str | Path | None = None, captions: str | Path | None = None, *,
                caption_format: str = "auto", corpus_size: int | None = None,
                stimulus_seed: int = 0):
    """A user's captioned folder (`images` + `captions`, its first `corpus_size` images), or
    the offline corpus of captioned synthetic stimuli (`corpus_size` images, default 1000)."""
    from stimuli.corpus import SYNTHETIC_SIZE, folder_corpus, synthetic_corpus

    if (images is None) != (captions is None):
        raise UsageError("--images and --captions go together: give both (a folder of photos "
                         "and its caption file), or neither for the offline corpus")
    if images is not None:
        return folder_corpus(images, captions, caption_format, corpus_size)
    return synthetic_corpus(corpus_size or SYNTHETIC_SIZE, stimulus_seed)


def run_loaded(run: RunDir, model: dict | None, device: str) -> LoadedModel:
    """The run's model (recorded in run.json, else `model`, else RN50/openai), loaded."""
    from interp.naming.answers import run_model

    return load_model(**run_model(run, model), device=device)


def embedding_cache(run: RunDir) -> EmbeddingCache:
    run.probe_embeddings.parent.mkdir(parents=True, exist_ok=True)
    return EmbeddingCache(run.probe_embeddings)


def corpus_record(corpus) -> dict:
    """run.json's account of the corpus: where it came from, what was skipped."""
    return {**corpus.spec(), "report": {k: v for k, v in corpus.report.items() if k != "skipped"}}
