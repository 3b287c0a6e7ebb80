"""TCAC, Transformative Caption Analysis for CLIP (Ranjan, Wen and Bhat, §3.2): how the ranking
of a pool of captions by CLIP image-text similarity changes when an image is transformed.

Per image, the pool is its own captions and each one's nearest captions of the corpus under CLIP's
text embedding; per image and transform, Δ = top − |top before ∩ top after| over the pool ranked
by image-text cosine before and after the transform, against an identity control (Δ = 0). Files,
statistics, figure and report are in tcac_report.py; docs/tcac.md is the manual.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interp.embeddings import EmbeddingCache, TextTower, cache_key
from interp.errors import ChromaError, UsageError
from interp.inputs import DTYPES
from interp.models import LoadedModel
from interp.probes.common import corpus_record, embedding_cache, open_corpus, run_loaded
from interp.probes.encoders import clip_encoder
from interp.probes.neighbours import nearest
from interp.rundir import RunDir

log = logging.getLogger(__name__)

#: The transforms, in order; `identity` is the control and always runs.
TRANSFORMS = ("identity", "grayscale", "rotation", "affine", "perspective", "hflip",
              "inversion", "elastic")
#: torchvision.transforms.v2 class and arguments of each transform (every one applied, p = 1).
TRANSFORM_PARAMS: dict[str, tuple[str, dict]] = {
    "identity": ("Identity", {}),
    "grayscale": ("Grayscale", {"num_output_channels": 3}),
    "rotation": ("RandomRotation", {"degrees": [-30.0, 30.0]}),
    "affine": ("RandomAffine", {"degrees": [-15.0, 15.0], "translate": [0.1, 0.1],
                                "scale": [0.9, 1.1], "shear": [-10.0, 10.0]}),
    "perspective": ("RandomPerspective", {"distortion_scale": 0.5, "p": 1.0}),
    "hflip": ("RandomHorizontalFlip", {"p": 1.0}),
    "inversion": ("RandomInvert", {"p": 1.0}),
    "elastic": ("ElasticTransform", {"alpha": 50.0, "sigma": 5.0}),
}
#: Captions encoded per text-tower batch.
TEXT_BATCH = 256


def parse_transforms(names: Sequence[str] | str | None) -> list[str]:
    """The transforms asked for, in TRANSFORMS order, identity always included."""
    if names is None:
        return list(TRANSFORMS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown or not names:
        raise UsageError(f"--transforms {','.join(names)}: unknown {', '.join(unknown) or 'none'}; "
                         f"choose among {','.join(TRANSFORMS)}")
    chosen = {"identity", *names}
    return [t for t in TRANSFORMS if t in chosen]


def check_settings(top: int, pool_neighbours: int, n_boot: int, n_permutations: int,
                   dtype: str, tcac_images: int | None = None, show: int = 0) -> None:
    """Refuse out-of-range settings before anything is loaded or written."""
    if tcac_images is not None and tcac_images < 1:
        raise UsageError(f"--tcac-images {tcac_images}: give a positive number of images to "
                         "transform (or leave it out for all)")
    if show < 0:
        raise UsageError(f"--show {show}: give 0 or more cases per transform")
    if top < 1:
        raise UsageError(f"--top {top}: give a positive number of top captions (the paper: 10)")
    if pool_neighbours < 1:
        raise UsageError(f"--pool-neighbours {pool_neighbours}: give a positive number of "
                         "nearest captions per caption (the paper: 10)")
    if n_boot < 1 or n_permutations < 1:
        raise UsageError("--bootstrap and --permutations must be positive")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype}: choose among {', '.join(DTYPES)}")


# --- transformed images -------------------------------------------------------------------

def transform_seed(seed: int, index: int, name: str) -> int:
    """Stable 63-bit seed of one (seed, image, transform): independent of batch and worker."""
    digest = hashlib.sha256(f"{int(seed)}/{int(index)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def build_transform(name: str):
    """The torchvision.transforms.v2 module of a transform name."""
    from torchvision.transforms import v2

    cls, params = TRANSFORM_PARAMS[name]
    return getattr(v2, cls)(**params)


def apply_transform(image: np.ndarray, name: str, seed: int, index: int,
                    transform=None) -> np.ndarray:
    """uint8 (H, W, 3) -> the transformed uint8 (H, W, 3), its randomness seeded per image.

    One thread, as in a DataLoader worker: the same pixels in the main process or a worker, and
    tiny images run 10-20x faster than with a thread pool's overhead."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(transform_seed(seed, index, name))
            out = (transform or build_transform(name))(x)
    finally:
        torch.set_num_threads(threads)
    return np.ascontiguousarray(out.permute(1, 2, 0).numpy())


class TransformedImages:
    """A corpus's images at one size under one transform (picklable, for DataLoader workers)."""

    def __init__(self, base, transform: str, seed: int) -> None:
        if transform not in TRANSFORM_PARAMS:
            raise UsageError(f"unknown transform {transform!r}; choose among "
                             f"{','.join(TRANSFORMS)}")
        self.base, self.transform, self.seed = base, transform, int(seed)
        self.name = f"corpus-{transform}"
        self._module = None

    def __len__(self) -> int:
        return len(self.base)

    def spec(self) -> dict:
        cls, params = TRANSFORM_PARAMS[self.transform]
        return {"name": self.name, "base": self.base.spec(), "transform": self.transform,
                "torchvision": cls, "params": params, "seed": self.seed}

    def render(self, i: int) -> np.ndarray:
        if self._module is None:
            self._module = build_transform(self.transform)
        return apply_transform(self.base.render(i), self.transform, self.seed, i, self._module)


# --- the text side ------------------------------------------------------------------------

def text_tower(loaded: LoadedModel) -> TextTower:
    """The model's text side (its own `tokenizer` attribute first), or a one-line refusal; a
    factory's module without `visual` may carry encode_text itself."""
    owner = loaded.clip if loaded.clip is not None else loaded.visual
    if not callable(getattr(owner, "encode_text", None)):
        raise ChromaError(f"--model {loaded.model} has no text tower (encode_text), which TCAC "
                          "needs to rank captions; use an open_clip CLIP model (e.g. --model "
                          "RN50) or a factory with encode_image, encode_text and tokenizer")
    tokenizer = getattr(owner, "tokenizer", None)
    tokenizer = tokenizer if callable(tokenizer) else loaded.tokenizer
    if tokenizer is None:
        raise ChromaError(f"--model {loaded.model} has encode_text but no tokenizer; give the "
                          "factory's module a `tokenizer` attribute (list of str -> tokens)")
    return TextTower(owner, tokenizer, loaded.device)


def unique_captions(captions: list[list[str]]) -> tuple[list[str], list[list[int]]]:
    """The distinct caption texts (first-seen order) and each image's captions as indices."""
    index: dict[str, int] = {}
    own = [[index.setdefault(c, len(index)) for c in caps] for caps in captions]
    return list(index), [list(dict.fromkeys(o)) for o in own]


def caption_embeddings(tower: TextTower, texts: list[str], cache: EmbeddingCache,
                       identity: dict, dtype: str) -> np.ndarray:
    """(U, D) unit-norm text embeddings of the distinct captions, each encoded once, cached
    in the probes' Zarr group under `text-{key}`."""
    listing = hashlib.sha1(json.dumps(texts).encode()).hexdigest()
    key = cache_key({"captions": listing, "n": len(texts)}, {**identity, "dtype": dtype,
                                                             "tower": "text"})
    def encode() -> np.ndarray:
        return np.concatenate([tower.encode(texts[a:a + TEXT_BATCH], dtype).cpu().numpy()
                               for a in range(0, len(texts), TEXT_BATCH)])

    return cache.stored(f"text-{key}", encode, ("caption", "feature"),
                        {"captions_sha1": listing, "n": len(texts)})


# --- pools and rankings -------------------------------------------------------------------

def caption_pools(text_emb: np.ndarray, own: list[list[int]], neighbours: int) -> list[list[int]]:
    """Per image: its own captions, then each one's `neighbours` nearest captions, deduplicated."""
    near = nearest(text_emb, neighbours).index
    return [list(dict.fromkeys([*o, *(int(j) for u in o for j in near[u])])) for o in own]


def padded(pools: list[list[int]]) -> np.ndarray:
    """(N, P) caption indices of the pools, -1 past each pool's end."""
    out = np.full((len(pools), max(map(len, pools))), -1, dtype=np.int64)
    for i, pool in enumerate(pools):
        out[i, :len(pool)] = pool
    return out


def rank_pools(image_emb: np.ndarray, text_emb: np.ndarray, pools: np.ndarray,
               block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Each pool in order of image-text cosine (ties to the lower caption index; padding
    last): (N, P) caption indices and their cosine."""
    order = np.empty_like(pools)
    sims = np.empty(pools.shape, dtype=np.float32)
    for a in range(0, len(pools), block):
        p = pools[a:a + block]
        s = np.einsum("npd,nd->np", text_emb[np.maximum(p, 0)], image_emb[a:a + block])
        s = np.where(p < 0, -np.inf, s).astype(np.float32)
        idx = np.lexsort((np.where(p < 0, np.iinfo(np.int64).max, p), -s), axis=-1)
        order[a:a + block] = np.take_along_axis(p, idx, axis=1)
        sims[a:a + block] = np.take_along_axis(s, idx, axis=1)
    return order, sims


def deltas(before: np.ndarray, after: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Δ = k − |top-k before ∩ top-k after| per image (k per image: min(top, pool size))."""
    width = int(k.max())
    b, a = before[:, :width], after[:, :width]
    keep = np.arange(width)[None, :] < k[:, None]
    same = (b[:, :, None] == a[:, None, :]) & keep[:, :, None] & keep[:, None, :]
    return (k - same.any(axis=2).sum(axis=1)).astype(np.int64)


def ranks_of(order: np.ndarray, captions: list[list[int]]) -> list[list[int]]:
    """1-based rank of each given caption in each image's ranked pool."""
    return [[int(np.flatnonzero(row == c)[0]) + 1 for c in caps]
            for row, caps in zip(order, captions, strict=True)]


@dataclass
class Ranking:
    """One transform's outcome per image: ranked pools, Δ, own captions' ranks."""

    order: np.ndarray
    sims: np.ndarray
    delta: np.ndarray
    own_ranks: list[list[int]]


# --- the step -----------------------------------------------------------------------------

def tcac(run_dir, *, model: dict | None = None, images=None, captions=None,
         caption_format: str = "auto", corpus_size: int | None = None,
         stimulus_seed: int = 0, transforms: Sequence[str] | None = None,
         tcac_images: int | None = None, pool_neighbours: int = 10, top: int = 10,
         show: int = 3, n_boot: int = 2000,
         n_permutations: int = 2000, stats_seed: int = 0, lexicon=None,
         batch_size: int = 64, device: str = "cpu", dtype: str = "float32",
         workers: int | None = None) -> Path:
    """Run TCAC on the run's CLIP model into RUN/tcac/; returns that folder.

    `tcac_images` runs it on N images spread evenly over the corpus (`Corpus.spread`: the
    pools draw on their captions only), for a corpus too large to transform whole. Transforms
    are seeded by `stimulus_seed` (per image and transform), statistics by `stats_seed`; image
    and caption embeddings are cached in RUN/probes (the untransformed ones shared with DAF on
    the same corpus), so a rerun is quick. `show`: cases per transform with thumbnails for the
    atlas.
    """
    from interp.probes import tcac_report
    from interp.probes.lexicon import Lexicon

    names = parse_transforms(transforms)
    check_settings(top, pool_neighbours, n_boot, n_permutations, dtype, tcac_images, show)
    lex = lexicon if isinstance(lexicon, Lexicon) else Lexicon.load(lexicon)
    corpus = open_corpus(images, captions, caption_format=caption_format,
                         corpus_size=corpus_size, stimulus_seed=stimulus_seed)
    corpus = corpus.spread(tcac_images) if tcac_images else corpus
    run = RunDir(os.fspath(run_dir))
    with run.lock():
        loaded = run_loaded(run, model, device)
        tower = text_tower(loaded)
        texts, own = unique_captions(corpus.captions)
        if pool_neighbours >= len(texts):
            raise UsageError(f"--pool-neighbours {pool_neighbours}: the corpus has "
                             f"{len(texts)} distinct captions; give fewer neighbours or more "
                             "images")
        encoder = clip_encoder(loaded)
        cache = embedding_cache(run)
        text_emb = caption_embeddings(tower, texts, cache, encoder.describe(), dtype)
        pools = padded(caption_pools(text_emb, own, pool_neighbours))
        base = corpus.images(encoder.image_size)
        before = np.asarray(encoder.embed_images(base, cache, batch_size=batch_size,
                                                 dtype=dtype, workers=workers)[:])
        k = np.minimum(top, (pools >= 0).sum(axis=1))
        order0, sims0 = rank_pools(before, text_emb, pools)
        rankings = {}
        for name in names:
            moved = TransformedImages(base, name, stimulus_seed)
            after = np.asarray(encoder.embed_images(moved, cache, batch_size=batch_size,
                                                    dtype=dtype, workers=workers,
                                                    desc=f"tcac {name}")[:])
            order, sims = rank_pools(after, text_emb, pools)
            rankings[name] = Ranking(order, sims, deltas(order0, order, k), ranks_of(order, own))
        original = Ranking(order0, sims0, np.zeros(len(k), np.int64), ranks_of(order0, own))
        settings = {"transforms": names, "tcac_images": tcac_images,
                    "pool_neighbours": pool_neighbours, "top": top, "show": show,
                    "n_boot": n_boot, "n_permutations": n_permutations,
                    "lexicon": lexicon if isinstance(lexicon, (str, os.PathLike)) else None,
                    "batch_size": batch_size, "dtype": dtype, "caption_format": caption_format,
                    "corpus_size": corpus_size}
        record = {"models": {"clip": encoder.describe()}, "corpus": corpus_record(corpus),
                  "settings": {k_: str(v) if isinstance(v, os.PathLike) else v
                               for k_, v in settings.items()},
                  "seeds": {"transforms": stimulus_seed, "stimuli": stimulus_seed,
                            "stats": stats_seed},
                  "transform_params": {n: TRANSFORM_PARAMS[n][1] for n in names}}
        study = tcac_report.Study(
            corpus=corpus, texts=texts, own=own, k=k, original=original, rankings=rankings,
            lexicon=lex, n_boot=n_boot, n_permutations=n_permutations, stats_seed=stats_seed,
            record=record, images=base, show=show,
            transformed=lambda name: TransformedImages(base, name, stimulus_seed))
        outputs = tcac_report.write_all(run.tcac, study)
        record["outputs"] = {name: str(path) for name, path in outputs.items()}
        run.update({"tcac": record})
    log.info("TCAC results in %s", run.tcac)
    return run.tcac
