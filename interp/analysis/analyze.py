"""The analyze step: every index of every unit -> RUN/analysis.zarr and RUN/neurons.csv.

Order: per set and block, top-N (streamed) and neuron features; Stroop colour-label selectivity;
CSI from one grayscale re-run of the distinct top-N natural images; hue; unit types; the table.
Each step of each block is skipped when already done, so a rerun resumes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from interp import store
from interp.analysis import hue as hue_mod
from interp.analysis import steps
from interp.analysis.csi import csi, gray_activations, opponent_gray_activations
from interp.analysis.rf import Field, block_field
from interp.analysis.runio import load_set, open_analysis
from interp.analysis.table import write_neurons_csv
from interp.analysis.types import Thresholds
from interp.errors import ChromaError, UsageError
from interp.rundir import RunDir, write_json_atomic

log = logging.getLogger(__name__)

ANALYSED_SETS = ("natural", "stroop", "words", "shapes")
# Version of what analysis.zarr holds and how it is computed; a store of another version is
# recomputed, never reused (2: conjunction and colour-family tests, testable units, mean_max).
FORMAT = 2
NF_SETS = ("natural", "stroop")


@dataclass(frozen=True)
class Settings:
    """What changes the numbers of an analysis (recorded in run.json; a rerun must match, except
    the thresholds: they only classify, and the table is rebuilt from stored arrays every run)."""

    top_n: int = 100
    n_permutations: int = 1000
    permutation_seed: int = 0
    csi_gray: str = "luminance"  # or "opponent": opponent-space PCA of the receptive field only
    nf_max_side: int = 64
    hue_bins: int = 12
    min_n_eff_fraction: float = 0.25  # testable: n_eff >= max(8, 0.25 N); selectivity.is_testable
    thresholds: Thresholds = field(default_factory=Thresholds)


def _check_sets(root, requested: list[str] | None) -> list[str]:
    present = [s for s in ANALYSED_SETS if s in root]
    sets = present if requested is None else requested
    for name in sets:
        if name not in root:
            raise UsageError(f"--sets: {name} is not in the run's store; extract it first or "
                             f"choose among {', '.join(present) or '(none)'}")
        done = store.completed_chunks(root[name])
        if not done.all():
            raise ChromaError(f"extraction of {name} is incomplete ({done.sum()} of {done.size} "
                              "chunks); rerun `chromadissect extract` with the run's settings")
    if "stroop" not in sets:
        raise UsageError("analyze needs the stroop set for colour-label selectivity and types; "
                         "extract it (`--sets stroop,...`)")
    return sets


def analyze(run_dir: str | os.PathLike, settings: Settings = Settings(), *,
            sets: list[str] | None = None, batch_size: int = 32, device: str = "cpu") -> Path:
    """Analyse every block of the run; returns the path of neurons.csv."""
    run = RunDir(run_dir)
    root = store.open_store(run.path)
    sets = _check_sets(root, sets)
    with run.lock():
        _check_format(run)
        recorded = {k: v for k, v in asdict(settings).items() if k != "thresholds"}
        run.check_settings("analyze", recorded)
        run.update({"analysis": {"thresholds": asdict(settings.thresholds)}})
        start = time.perf_counter()
        ctx = _Context(run, root, settings, sets, batch_size, device)
        steps_s = {}
        for name, step in (("top-N and NF", ctx.per_block), ("selectivity", ctx.selectivity),
                           ("CSI", ctx.csi), ("hue", ctx.corpus_hue)):
            t0 = time.perf_counter()
            step()
            steps_s[name] = round(time.perf_counter() - t0, 3)
            log.info("%s: %.1f s", name, steps_s[name])
        path = write_neurons_csv(run.path, ctx.out, ctx.blocks, sets, settings)
        run.update({"timings": {"analyze": round(time.perf_counter() - start, 3),
                                "analyze_steps": steps_s}})
    log.info("analysis of %d blocks in %s; table in %s", len(ctx.blocks), ctx.out.store, path)
    return path


def _check_format(run: RunDir) -> None:
    """Start analysis.zarr afresh when it was written by another analysis format."""
    out = open_analysis(run.path, mode="a")
    found = out.attrs.get("format")
    if found != FORMAT and (found is not None or list(out.group_keys())):
        log.warning("%s was written by analysis format %s; recomputing it with format %d",
                    run.analysis, found or 1, FORMAT)
        out = open_analysis(run.path, mode="w")
        data = run.read()
        for section in ("analyze", "analysis"):  # settings and results of the old format
            data.pop(section, None)
        write_json_atomic(run.json_path, data)
    out.attrs["format"] = FORMAT
    run.update({"analysis": {"format": FORMAT}})


class _Context:
    """What every step needs: the run, its stores, the model (loaded once, lazily), settings."""

    def __init__(self, run: RunDir, root, settings: Settings, sets: list[str], batch_size: int,
                 device: str) -> None:
        self.run, self.root, self.settings, self.sets = run, root, settings, sets
        self.batch_size, self.device = batch_size, device
        self.blocks = store.block_names(root, "stroop")
        self.out = open_analysis(run.path, mode="a")
        self._loaded = None
        self._stim: dict = {}

    @property
    def loaded(self):
        if self._loaded is None:
            from interp.models import load_model

            self._loaded = load_model(**self.run.model_settings(), device=self.device)
        return self._loaded

    def stim(self, name: str):
        if name not in self._stim:
            self._stim[name] = load_set(self.run.path, name)
        return self._stim[name]

    def field(self, block: str) -> Field:
        """Receptive-field geometry of a block, computed once and kept in analysis.zarr."""
        g = self.out.require_group(block)
        if "field" not in g.attrs:
            shape = tuple(self.root["stroop"][block].attrs["map_shape"])
            f, method = block_field(self.loaded.visual, block, self.loaded.image_size, shape)
            g.attrs.update({"field": f.to_attrs(), "field_method": method,
                            "rf_size": list(f.size)})
        return Field.from_attrs(g.attrs["field"])

    def per_block(self) -> None:
        s = self.settings
        for name in self.sets:
            n = min(s.top_n, int(self.root[name].attrs["n_images"]))
            for block in store.block_names(self.root, name):
                out = self.out.require_group(f"{name}/{block}")
                if not steps.is_done(out, "topn"):
                    log.info("top-%d of %s %s", n, name, block)
                    steps.topn_step(self.root[name][block], out, n)
                    steps.unmark(self.out[name], "selectivity")  # new top-N: redo what uses it
                    steps.unmark(out, "nf")
                    steps.unmark(out, "csi")
                if name in NF_SETS and not steps.is_done(out, "nf"):
                    field = self.field(block)
                    out.attrs.update({"field": field.to_attrs(), "rf_size": list(field.size)})
                    hue_set = "natural" if "natural" in self.sets else "stroop"
                    steps.nf_step(out, self.stim(name), field, s.nf_max_side,
                                  desc=f"NF {name} {block}", with_hue=name == hue_set)

    def selectivity(self) -> None:
        """Colour-label selectivity of every Stroop unit with its permutation test (one pass)."""
        stroop = self.out["stroop"]
        if steps.is_done(stroop, "selectivity"):
            return
        labels = {k: self.root["stroop"]["labels"][k][:] for k in ("word", "font_color",
                                                                   "bg_color")}
        log.info("colour-label selectivity of %d blocks (%d label shuffles)", len(self.blocks),
                 self.settings.n_permutations)
        steps.selectivity_step(stroop, self.blocks, steps.stroop_kinds(labels),
                               self.settings.n_permutations, self.settings.permutation_seed,
                               self.settings.min_n_eff_fraction)

    def csi(self) -> None:
        """CSI of every natural block not done yet, from one grayscale pass over their images."""
        if "natural" not in self.sets:
            return
        todo = [b for b in self.blocks if not steps.is_done(self.out[f"natural/{b}"], "csi")]
        if not todo:
            return
        groups = {b: self.out[f"natural/{b}"] for b in todo}
        pairs = {b: (g["topn_index"][:], g["topn_loc"][:]) for b, g in groups.items()}
        render = self.stim("natural").render
        dtype = self.run.read().get("extract", {}).get("dtype", "float32")
        if self.settings.csi_gray == "opponent":
            a_gray = {b: opponent_gray_activations(self.loaded, render, b, *pairs[b],
                                                   self.field(b), self.batch_size, dtype)
                      for b in todo}
        else:
            a_gray = gray_activations(self.loaded, render, pairs, self.batch_size, dtype=dtype)
        for b, g in groups.items():
            values = csi(g["topn_value"][:], a_gray[b])
            steps.write(g, "a_gray", a_gray[b], ("units", "rank"))
            steps.write(g, "csi", values, ("units",))
            g.attrs["csi_histogram"] = steps.csi_histogram(values)
            steps.mark_done(g, "csi")
        log.info("CSI of %d blocks from %d distinct natural images", len(todo),
                 len(np.unique(np.concatenate([p[0].ravel() for p in pairs.values()]))))

    def corpus_hue(self) -> None:
        """Hue histogram of the colour-selective units' NFs against the natural corpus pixels,
        beside the r of NFs built from random crops (hue.random_crop_null), the baseline r is
        read against; bins from hue.hue_bin_edges. Also RUN/figures/hue_histogram.csv."""
        if "natural" not in self.sets:
            return
        g, stim = self.out["natural"], self.stim("natural")
        edges = hue_mod.hue_bin_edges(self.settings.hue_bins)
        if g.attrs.get("hue_bins_deg") != edges.tolist() or "corpus_hue" not in g.attrs:
            counts = hue_mod.CorpusHue(edges)
            for i in range(len(stim)):
                counts.add(stim.render(i))
            g.attrs.update({"corpus_hue": counts.histogram().tolist(),
                            "hue_bins_deg": edges.tolist()})
        corpus = np.asarray(g.attrs["corpus_hue"])
        cut = self.settings.thresholds.color_selective_csi
        chosen = {b: g[b]["csi"][:] >= cut for b in self.blocks}
        hues = np.concatenate([np.where(chosen[b], g[b]["hue_deg"][:], np.nan)
                               for b in self.blocks])
        units = hue_mod.hue_histogram(hues, edges)
        r = hue_mod.pearson_r(units, corpus)
        blocks = [hue_mod.NullBlock(g[b]["topn_value"][:][chosen[b]],
                                    tuple(self.root["natural"][b].attrs["map_shape"]),
                                    self.field(b)) for b in self.blocks if chosen[b].any()]
        draws, seed = hue_mod.NULL_DRAWS, hue_mod.NULL_SEED
        key = hue_mod.null_key(blocks, edges, len(stim), draws, seed, self.settings.nf_max_side)
        null = dict(g.attrs.get("hue_null", {}))
        if null.get("key") != key:  # resumable: same units, weights, bins and seeds: reused
            t0 = time.perf_counter()
            null = hue_mod.random_crop_null(stim.render, blocks, len(stim), edges, corpus, draws,
                                            seed, self.settings.nf_max_side)
            g.attrs["hue_null"] = null | {"key": key, "seconds": time.perf_counter() - t0}
        summary = {k: null[k] for k in ("mean", "lo", "hi", "interval", "r", "draws", "seed")}
        g.attrs.update({"unit_hue": units.tolist(), "hue_pearson_r": r,
                        "hue_pearson_r_null": summary})
        hue_mod.write_histogram_csv(self.run.hue_histogram_csv, edges, units, corpus, null)
        n = int(np.isfinite(hues).sum())
        self.run.update({"analysis": {"hue_pearson_r": r, "hue_pearson_r_null": summary,
                                      "color_selective_units": n}})
        log.info("hue of %d colour-selective units vs natural corpus: Pearson r = %.3f "
                 "(random-crop null: %.3f, %s [%.3f, %.3f])", n, r, summary["mean"],
                 summary["interval"], summary["lo"], summary["hi"])
