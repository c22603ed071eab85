"""Language identification: hand-written posts per language, emoji-only and code-mixed posts
with the real shipped detector, and the hint rules with a fake ranker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from brandmon.stream.language import (
    UND,
    FastTextRanker,
    LanguageGuess,
    LanguagePolicy,
    clean,
    identify,
    normalize_hint,
)

POSTS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "lang_posts.jsonl").read_text().splitlines()
]
POLICY = LanguagePolicy()


@pytest.fixture(scope="module")
def ranker() -> FastTextRanker:
    return FastTextRanker()


def _identify(ranker: FastTextRanker, texts: list[str]) -> list[LanguageGuess]:
    return identify(texts, [None] * len(texts), ranker, POLICY)


@pytest.mark.parametrize("lang", ["en", "fr", "es", "de", "pt"])
def test_posts_of_each_language_are_identified(ranker: FastTextRanker, lang: str) -> None:
    posts = [post["text"] for post in POSTS if post["lang"] == lang]
    guesses = _identify(ranker, posts)
    right = [guess for guess in guesses if guess.lang == lang]
    wrong = [(p, g) for p, g in zip(posts, guesses, strict=True) if g.lang not in (lang, UND)]
    assert len(right) >= 0.8 * len(posts), list(zip(posts, guesses, strict=True))
    assert not wrong  # unsure is allowed (it is `und`), another language is not


def test_a_handful_of_clear_posts(ranker: FastTextRanker) -> None:
    texts = {
        "en": "worst customer service ever, never buying again",
        "fr": "pire service client de ma vie, plus jamais",
        "es": "el peor servicio al cliente, nunca más",
        "de": "schlechtester kundenservice überhaupt, nie wieder",
        "pt": "pior atendimento da minha vida, nunca mais",
    }
    guesses = _identify(ranker, list(texts.values()))
    assert [guess.lang for guess in guesses] == list(texts)
    assert all(guess.confidence >= POLICY.min_confidence for guess in guesses)


def test_emoji_only_posts_are_undetermined(ranker: FastTextRanker) -> None:
    posts = [post["text"] for post in POSTS if post.get("kind") == "emoji"]
    assert {guess.lang for guess in _identify(ranker, posts)} == {UND}


def test_code_mixed_posts_get_one_of_their_languages_or_und(ranker: FastTextRanker) -> None:
    mixed = {
        "the app es muy buena pero the battery no": {"en", "es"},
        "omg c'est trop cute the new packaging": {"en", "fr"},
        "lieferung super fast, danke guys": {"en", "de"},
        "muito bom but too expensive": {"en", "pt"},
        "merci thanks gracias": {"en", "fr", "es"},
    }
    for text, guess in zip(mixed, _identify(ranker, list(mixed)), strict=True):
        assert guess.lang in mixed[text] | {UND}, (text, guess)


def test_too_short_posts_are_undetermined_without_a_hint(ranker: FastTextRanker) -> None:
    assert [g.lang for g in _identify(ranker, ["ok", "wow", "no", "@acme 👍"])] == [UND] * 4


class FakeRanker:
    """Answers a fixed ranking per text and records what it was asked."""

    def __init__(self, answers: dict[str, list[tuple[str, float]]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def rank(self, texts: Sequence[str], k: int = 1) -> list[list[tuple[str, float]]]:
        self.calls.append(list(texts))
        return [self.answers[text][:k] for text in texts]


def test_the_hint_is_kept_unless_the_text_clearly_says_otherwise() -> None:
    ranker = FakeRanker(
        {
            "unsure text": [("es", 0.6), ("pt", 0.3)],
            "clear text": [("fr", 0.95), ("en", 0.02)],
        }
    )
    guesses = identify(
        ["unsure text", "clear text", "unsure text", "🙂"],
        ["pt-BR", "en", None, "de"],
        ranker,
        POLICY,
    )
    assert guesses == [
        LanguageGuess("pt", 0.3),  # the detector is not sure enough to overrule the producer
        LanguageGuess("fr", 0.95),  # it is sure: the producer's "en" was wrong
        LanguageGuess(UND, 0.6),  # no hint and below min_confidence
        LanguageGuess("de", 0.0),  # nothing to read: the hint decides
    ]
    # each text once; the hint's probability asked again only where the best is not the hint
    assert ranker.calls == [["unsure text", "clear text"], ["unsure text", "clear text"]]


def test_hints_are_normalized() -> None:
    assert normalize_hint("pt-BR") == "pt"
    assert normalize_hint(" EN ") == "en"
    assert normalize_hint("zh_Hant_TW") == "zh"
    for no_language in (None, "", "und", "zxx", "qme", "english", "12"):
        assert normalize_hint(no_language) is None


def test_clean_drops_links_mentions_and_hash_signs() -> None:
    assert clean("@acme LOVE it #BestDay https://t.co/x  ok\n") == "love it bestday ok"
