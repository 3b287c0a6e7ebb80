"""Category lexicons of the probes' failure types: which words of a caption belong to colour,
number, position, action, ... (interp/probes/lexicon.json, extendable with a user's file)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from interp.errors import UsageError

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.json")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-case words of a caption (hyphenated and apostrophe forms kept whole)."""
    return _WORD.findall(text.lower())


class Lexicon:
    """category -> words/phrases; `words(caption)` gives each category's words in a caption,
    plural -s/-es forms mapped to the entry."""

    def __init__(self, categories: dict[str, Iterable[str]]) -> None:
        self.categories = {name: tuple(dict.fromkeys(w.lower().strip() for w in words))
                           for name, words in categories.items()}

    @classmethod
    def load(cls, extra: str | Path | None = None) -> Lexicon:
        """The shipped lexicon, with a user's file merged in (its categories replace those of
        the same name and add new ones)."""
        categories = _read(DEFAULT_LEXICON)
        if extra is not None:
            categories.update(_read(Path(extra).expanduser(), user=True))
        return cls(categories)

    @property
    def names(self) -> list[str]:
        return list(self.categories)

    @cached_property
    def _phrases(self) -> dict[tuple[str, ...], list[tuple[str, str]]]:
        out: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for name, words in self.categories.items():
            for entry in words:
                parts = tuple(tokens(entry))
                for last in {parts[-1], parts[-1] + "s", parts[-1] + "es"}:
                    out.setdefault(parts[:-1] + (last,), []).append((name, entry))
        return out

    @cached_property
    def _longest(self) -> int:
        return max((len(p) for p in self._phrases), default=1)

    def words(self, caption: str) -> dict[str, frozenset[str]]:
        """{category: the entries it has in the caption} for every category (empty if none)."""
        found: dict[str, set[str]] = {name: set() for name in self.categories}
        words = tokens(caption)
        for i in range(len(words)):
            for n in range(1, self._longest + 1):
                for name, entry in self._phrases.get(tuple(words[i:i + n]), ()):
                    found[name].add(entry)
        return {name: frozenset(v) for name, v in found.items()}


def _read(path: Path, user: bool = False) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"--lexicon {path}: cannot read it as JSON ({err}); give a file of "
                         '{"category": ["word", ...]}') from None
    if not isinstance(data, dict):
        raise UsageError(f"--lexicon {path}: expected a JSON object of category -> word list")
    out = {}
    for name, words in data.items():
        if name.startswith("_"):
            continue
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip()
                                                   for w in words) or not words:
            raise UsageError(f"--lexicon {path}: category {name!r} must be a non-empty list of "
                             "words")
        out[name] = words
    if user and not out:
        raise UsageError(f"--lexicon {path}: no category in it")
    return out
