"""Routing a score batch by language: each part scored by a model that reads it.

`LanguageRouter.score` is the one hook the score stage calls (stream/scoring.py) when language
routing is on. For a batch of valid posts it finds each post's language (stream/language.py),
picks a model per language, scores each part with the stage's own scoring function, writes the
posts no model reads as unscored records, and puts everything back in the batch's order with
`lang`, `lang_confidence` and `lang_hint` set.

Which model reads a language (`route_for`): a model of the registry (BRANDMON_LANG_MODELS) for
that language; else the stage's current model when its manifest lists the language; else, by
setting, the current model anyway ("fallback") or no model ("unscored"). `und` has its own
setting. The current model is passed in per batch, so a promotion (stream/rollout.py) changes
what reads the default languages at a batch boundary, as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from brandmon.contracts.classifier import Classifier
from brandmon.contracts.manifest import ManifestError, load_manifest, resolve_model_folder
from brandmon.contracts.posts import NO_MODEL_FOR_LANGUAGE, Post, ScoredPost
from brandmon.contracts.records import RawRecord
from brandmon.metrics import Metrics
from brandmon.stream.language import (
    UND,
    LanguageGuess,
    LanguagePolicy,
    LanguageRanker,
    identify,
)

if TYPE_CHECKING:
    from brandmon.settings import Settings
    from brandmon.stream.scoring import BatchResult

log = logging.getLogger(__name__)

#: `unscored_reason` of an `und` post when BRANDMON_LANG_UNDETERMINED=unscored.
UNDETERMINED_LANGUAGE = "undetermined_language"
#: Languages of a model whose manifest does not say (a fake, or a pre-routing export).
DEFAULT_LANGUAGES = ("en",)

Policy = Literal["unscored", "fallback"]
#: The scoring function of the stage: scores `valid` with `clf` into `result`.
ScorePart = Callable[[Classifier, list[tuple[RawRecord, Post]], "BatchResult"], None]


class RegistryError(Exception):
    """A model of BRANDMON_LANG_MODELS cannot be loaded or does not read its language."""


def model_languages(clf: Classifier) -> tuple[str, ...]:
    """The languages `clf`'s manifest lists (English for a classifier without one)."""
    manifest = getattr(clf, "manifest", None)
    languages = getattr(manifest, "languages", None)
    return tuple(languages) if languages else DEFAULT_LANGUAGES


@dataclass(frozen=True)
class Route:
    """Where one language goes: a model, or none with the reason written on its records."""

    model: Classifier | None
    reason: str | None = None


class LanguageRouter:
    """Finds languages, splits the batch by model, scores each part, merges in order."""

    def __init__(
        self,
        ranker: LanguageRanker,
        policy: LanguagePolicy,
        metrics: Metrics,
        registry: Mapping[str, Classifier] | None = None,
        no_model: Policy = "unscored",
        undetermined: Policy = "fallback",
    ) -> None:
        self.ranker = ranker
        self.policy = policy
        self.metrics = metrics
        self.registry = dict(registry or {})
        self.no_model = no_model
        self.undetermined = undetermined

    def route_for(self, lang: str, default: Classifier) -> Route:
        if lang == UND:
            if self.undetermined == "fallback":
                return Route(default)
            return Route(None, UNDETERMINED_LANGUAGE)
        if lang in self.registry:
            return Route(self.registry[lang])
        if lang in model_languages(default) or self.no_model == "fallback":
            return Route(default)
        return Route(None, NO_MODEL_FOR_LANGUAGE)

    def score(
        self,
        valid: list[tuple[RawRecord, Post]],
        default: Classifier,
        score_part: ScorePart,
        result: BatchResult,
        scored_at: datetime,
    ) -> None:
        """Score `valid` into `result`: scored and unscored records in input order, dead
        letters (posts a model raised on) after the batch's parse errors."""
        started = time.perf_counter()
        posts = [post for _, post in valid]
        try:
            guesses = identify(
                [p.text for p in posts], [p.lang for p in posts], self.ranker, self.policy
            )
        except Exception as exc:  # the detector must not stop scoring: every post is `und`
            # Policy: a batch the detector fails on is routed as undetermined (by default the
            # main model), logged; raising would crash the worker into the same batch forever.
            log.error("language identification failed on a batch of %d: %r", len(posts), exc)
            guesses = [LanguageGuess(UND, 0.0) for _ in posts]
        self.metrics.batch_stage_seconds.labels(stage="language").observe(
            time.perf_counter() - started
        )
        routes = [self.route_for(guess.lang, default) for guess in guesses]
        out: dict[int, ScoredPost] = {}
        for model, indices in _parts(routes):
            part = type(result)()
            score_part(model, [valid[i] for i in indices], part)
            by_record = {id(record): post for record, post in part.scored}
            for i in indices:
                if id(valid[i][0]) in by_record:
                    out[i] = by_record[id(valid[i][0])]
            result.dead.extend(part.dead)
        for i, ((record, post), guess, route) in enumerate(
            zip(valid, guesses, routes, strict=True)
        ):
            if route.model is None:
                out[i] = _unscored(post, route.reason or NO_MODEL_FOR_LANGUAGE, scored_at)
            if i in out:
                scored = _with_language(out[i], post, guess)
                result.scored.append((record, scored))
                self.metrics.language_posts.labels(
                    lang=guess.lang, model=scored.model_id or "unscored"
                ).inc()


def _parts(routes: Sequence[Route]) -> list[tuple[Classifier, list[int]]]:
    """Indices of the posts each model scores, models in order of first use."""
    parts: dict[int, tuple[Classifier, list[int]]] = {}
    for i, route in enumerate(routes):
        if route.model is not None:
            parts.setdefault(id(route.model), (route.model, []))[1].append(i)
    return list(parts.values())


def _unscored(post: Post, reason: str, scored_at: datetime) -> ScoredPost:
    return ScoredPost(
        **post.model_dump(),
        model_id="",
        model_version="",
        scored_at=scored_at,
        unscored_reason=reason,
    )


def _with_language(scored: ScoredPost, post: Post, guess: LanguageGuess) -> ScoredPost:
    return scored.model_copy(
        update={"lang": guess.lang, "lang_confidence": guess.confidence, "lang_hint": post.lang}
    )


def load_registry(
    models: Mapping[str, Path], loader: Callable[[Path], Classifier]
) -> dict[str, Classifier]:
    """Load each model folder of the registry once (a folder may serve several languages) and
    check that its manifest lists the language it is registered for."""
    loaded: dict[Path, Classifier] = {}
    registry: dict[str, Classifier] = {}
    for lang, path in models.items():
        try:
            folder = resolve_model_folder(path)
            languages = load_manifest(folder).languages
        except ManifestError as exc:
            raise RegistryError(f"BRANDMON_LANG_MODELS[{lang!r}]: {exc}") from exc
        if lang not in languages:
            raise RegistryError(
                f"BRANDMON_LANG_MODELS maps {lang!r} to {path}, whose manifest lists only "
                f"{', '.join(languages)}: export the model with --languages {lang} (or map "
                "the language to a model that reads it)"
            )
        if folder not in loaded:
            loaded[folder] = loader(folder)
        registry[lang] = loaded[folder]
    return registry


def router_for(
    settings: Settings, metrics: Metrics, loader: Callable[[Path], Classifier]
) -> LanguageRouter | None:
    """The router the settings describe (None when BRANDMON_LANG_ROUTING is off); builds the
    real detector and loads every registry model now, so a bad one stops the start-up."""
    if not settings.lang_routing:
        return None
    from brandmon.stream.language import FastTextRanker

    return LanguageRouter(
        FastTextRanker(),
        LanguagePolicy(
            min_letters=settings.lang_min_letters,
            min_confidence=settings.lang_min_confidence,
            override_confidence=settings.lang_override_confidence,
        ),
        metrics,
        load_registry(settings.lang_models, loader),
        no_model=settings.lang_no_model,
        undetermined=settings.lang_undetermined,
    )
