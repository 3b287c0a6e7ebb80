"""The DAF step (Discrepancy Analysis Framework, Ranjan, Wen and Bhat §3.1): where CLIP's image
embedding and a reference encoder's disagree about which images are alike, and which kinds of
caption words those disagreements are about -> RUN/daf/.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from interp.errors import UsageError
from interp.probes import daf_report as files
from interp.probes import discrepancy as dis
from interp.probes import output
from interp.probes.common import corpus_record, embedding_cache, open_corpus, run_loaded
from interp.probes.encoders import (
    DEFAULT_REFERENCE,
    RANDOM_INIT,
    check_reference,
    clip_encoder,
    load_reference,
)
from interp.probes.lexicon import Lexicon
from interp.probes.neighbours import Comparison, check_k, compare
from interp.rundir import RunDir

log = logging.getLogger(__name__)


def check_settings(k: int, max_overlap: int, blind_rank: int, alpha: float, caption: str) -> None:
    from stimuli.corpus import CAPTION_CHOICES

    if not 0 <= max_overlap < k:
        raise UsageError(f"--max-overlap {max_overlap}: needs 0 <= it < --k ({k})")
    if blind_rank < k:
        raise UsageError(f"--blind-rank {blind_rank}: needs at least --k ({k})")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha {alpha}: needs 0 < alpha < 1")
    if caption not in CAPTION_CHOICES:
        raise UsageError(f"--caption {caption}: choose {' or '.join(CAPTION_CHOICES)}")


def daf(run_dir: str | os.PathLike, *, model: dict | None = None,
        images: str | os.PathLike | None = None, captions: str | os.PathLike | None = None,
        caption_format: str = "auto", caption: str = "longest", corpus_size: int | None = None,
        stimulus_seed: int = 0, reference: str = DEFAULT_REFERENCE,
        reference_weights: str | None = None, k: int = 10, max_overlap: int = 2,
        blind_rank: int = 100, alpha: float = 0.05, lexicon: str | os.PathLike | None = None,
        min_word_count: int = 5, n_permutations: int = 2000, n_boot: int = 2000,
        stats_seed: int = 0, show: int = 24, batch_size: int = 64, device: str = "cpu",
        dtype: str = "float32", workers: int | None = None) -> Path:
    """CLIP vs the reference on a captioned corpus (a folder + captions, else the offline
    synthetic one) into RUN/daf/; returns that folder.

    `reference_weights` None: timm's weights of the reference, or none (random init) when the
    CLIP model is untrained too, so that an offline control compares like with like.
    """
    check_settings(k, max_overlap, blind_rank, alpha, caption)
    lex = Lexicon.load(lexicon)
    corpus = open_corpus(images, captions, caption_format=caption_format,
                         corpus_size=corpus_size, stimulus_seed=stimulus_seed)
    check_k(k, len(corpus))
    check_reference(reference)
    if blind_rank >= len(corpus) - 1:
        log.warning("--blind-rank %d: the corpus has %d images, so no pair can be ranked "
                    "beyond it; pairs.csv stays empty", blind_rank, len(corpus))
    run = RunDir(run_dir)
    timings: dict[str, float] = {}
    with run.lock():
        start = time.perf_counter()
        loaded = run_loaded(run, model, device)
        weights = reference_weights or (RANDOM_INIT if loaded.pretrained == "none" else None)
        ref = load_reference(reference, weights, seed=loaded.seed, device=device)
        clip = clip_encoder(loaded)
        timings["load"] = time.perf_counter() - start
        cache = embedding_cache(run)
        embeddings = {}
        for encoder in (clip, ref):
            start = time.perf_counter()
            embeddings[encoder.role] = encoder.embed(corpus, cache, batch_size=batch_size,
                                                     dtype=dtype, workers=workers)[:]
            timings[f"embed_{encoder.role}"] = time.perf_counter() - start
        start = time.perf_counter()
        cmp = compare(embeddings["clip"], embeddings["reference"], k, device=device)
        timings["neighbours"] = time.perf_counter() - start
        info = {"clip": clip.describe(), "reference": ref.describe(),
                "corpus": corpus_record(corpus), "corpus_note": _corpus_note(corpus),
                "settings": {"k": k, "max_overlap": max_overlap, "blind_rank": blind_rank,
                             "alpha": alpha, "caption": caption, "caption_format": caption_format,
                             "lexicon": str(lexicon) if lexicon else "shipped",
                             "min_word_count": min_word_count, "n_permutations": n_permutations,
                             "n_boot": n_boot, "stats_seed": stats_seed, "dtype": dtype,
                             "stimulus_seed": stimulus_seed},
                "command": _command(run_dir, images, captions, reference, weights)}
        start = time.perf_counter()
        out = write_results(run.daf, corpus, corpus.chosen_captions(caption), cmp, lex, info,
                            clip_size=clip.image_size, show=show)
        timings["analysis"] = time.perf_counter() - start
        info["timings_s"] = {key: round(v, 2) for key, v in timings.items()}
        run.update({"daf": {key: v for key, v in info.items() if key != "corpus_note"}})
    log.info("DAF: %d failures of %d queries, results in %s", info["results"]["n_failures"],
             len(corpus), out)
    return out


def write_results(out: Path, corpus, captions: list[str], cmp: Comparison, lex: Lexicon,
                  info: dict, *, clip_size: int, show: int) -> Path:
    """Every DAF file from the neighbour comparison; fills info["results"]."""
    s = info["settings"]
    overlap = dis.overlaps(cmp)
    queries = np.flatnonzero(overlap <= s["max_overlap"])
    out.mkdir(parents=True, exist_ok=True)
    failures = [_failure(cmp, corpus.ids, captions, int(q), int(overlap[q])) for q in
                sorted(queries.tolist(), key=lambda q: (overlap[q], q))]
    output.write_jsonl(out / "failures.jsonl", failures)
    pairs = dis.blind_pairs(cmp, s["blind_rank"])
    output.write_table(out / "pairs.csv", [_pair(cmp, corpus.ids, captions, *p) for p in pairs],
                      PAIR_COLUMNS)
    effects = dis.category_effects(cmp, captions, queries, lex)
    tests = dis.column_tests(effects, lex.names, n_permutations=s["n_permutations"],
                             n_boot=s["n_boot"], seed=s["stats_seed"])
    types = files.type_rows(tests, s["alpha"])
    output.write_table(out / "failure_types.csv", types, files.TYPE_COLUMNS)
    vocab, word_fx = dis.word_effects(cmp, captions, queries, s["min_word_count"])
    words = [{"word": t.pop("name"), **t, "exploratory": True} for t in dis.column_tests(
        word_fx, vocab, n_permutations=s["n_permutations"], n_boot=s["n_boot"],
        seed=s["stats_seed"] + 1)]
    words.sort(key=lambda w: (np.nan_to_num(w["q"], nan=2.0), -np.nan_to_num(w["effect"])))
    output.write_table(out / "words.csv", words, ("word", "n_queries", "effect", "ci_low",
                                                 "ci_high", "p", "q", "exploratory"))
    n = len(corpus)
    info["results"] = {"n_images": n, "n_failures": len(failures), "n_pairs": len(pairs),
                       "mean_overlap": float(overlap.mean()),
                       "chance_overlap": dis.chance_overlap(s["k"], n),
                       "failure_types": [t["category"] for t in types if t["direction"] == "clip"],
                       "prompt_chunks": files.write_prompt(out / "prompt.txt", failures)}
    examples = _examples(cmp, captions, queries, effects, lex, types)
    files.effects_figure(out / "failure_types.png", types,
                         f"DAF: {info['clip']['model']} vs {info['reference']['model']}, "
                         f"{len(failures)} failures of {n}")
    (out / "report.md").write_text(files.report_markdown(info, types, words, examples))
    shown = {i for f in failures[:show] for i in
             [f["query"], *(x["index"] for x in f["clip_only"] + f["reference_only"])]}
    output.write_thumbs(out / "thumbs", corpus.images(clip_size), shown)
    return out


PAIR_COLUMNS = ("query", "neighbour", "query_image", "neighbour_image", "query_caption",
                "neighbour_caption", "clip_cos", "clip_rank", "reference_cos", "reference_rank")


def _pair(cmp: Comparison, ids: list[str], captions: list[str], q: int, i: int, j: int) -> dict:
    return {"query": q, "neighbour": i, "query_image": ids[q], "neighbour_image": ids[i],
            "query_caption": captions[q], "neighbour_caption": captions[i],
            "clip_cos": float(cmp.a.sim[q, j]), "clip_rank": j + 1,
            "reference_cos": float(cmp.a_sim_in_b[q, j]),
            "reference_rank": int(cmp.a_rank_in_b[q, j])}


def _failure(cmp: Comparison, ids: list[str], captions: list[str], q: int, overlap: int) -> dict:
    """One failure query: its caption, CLIP-only and reference-only neighbours, shared ones."""
    s = dis.split(cmp, q)

    def side(index, sim, rank, other_sim, positions):
        return [{"index": int(index[q, j]), "image": ids[int(index[q, j])],
                 "caption": captions[int(index[q, j])], "rank": j + 1,
                 "cos": round(float(sim[q, j]), 5), "rank_other": int(rank[q, j]),
                 "cos_other": round(float(other_sim[q, j]), 5)} for j in positions]

    return {"query": q, "image": ids[q], "caption": captions[q], "overlap": overlap,
            "clip_only": side(cmp.a.index, cmp.a.sim, cmp.a_rank_in_b, cmp.a_sim_in_b,
                              s.clip_only),
            "reference_only": side(cmp.b.index, cmp.b.sim, cmp.b_rank_in_a, cmp.b_sim_in_a,
                                   s.reference_only),
            "shared": s.shared}


def _examples(cmp, captions, queries, effects, lex, types) -> dict:
    """Three triplets for each category that is a significant CLIP failure (else the top 3)."""
    chosen = [t["category"] for t in types if t["direction"] == "clip"] or \
        [t["category"] for t in types[:3] if t["n_queries"]]
    out = {}
    for name in chosen:
        found = dis.examples(cmp, captions, queries, effects, lex, lex.names.index(name))
        out[name] = [{**e, "clip_caption": captions[e["clip_neighbour"]],
                      "reference_caption": captions[e["reference_neighbour"]]} for e in found]
    return out


def _corpus_note(corpus) -> str:
    r = corpus.report
    if corpus.kind == "synthetic":
        return "captioned shapes and Stroop stimuli, offline"
    skipped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r.items()
                        if k not in ("n_images", "skipped") and v)
    return f"{corpus.source['images']}; skipped: {skipped or 'nothing'}"


def _command(run_dir, images, captions, reference: str, weights: str | None) -> str:
    parts = ["chromadissect daf", f"--run-dir {run_dir}"]
    if images is not None:
        parts += [f"--images {images}", f"--captions {captions}"]
    if reference != DEFAULT_REFERENCE:
        parts.append(f"--reference {reference}")
    if weights:
        parts.append(f"--reference-weights {weights}")
    return " ".join(parts)
