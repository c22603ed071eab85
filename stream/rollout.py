"""Promote and roll back the score worker's model while it runs, without downtime.

    validate_model(folder)        off the event loop, in its own thread, while the old model
                                  keeps scoring: manifest readable, labels canonical, every
                                  file's sha256 as the manifest says, the model loads, and a
                                  smoke test (fixed texts: finite probabilities summing to 1)
    ModelRollout.promote(folder)  validate, then swap `BatchScorer.classifier` in one
                                  assignment: a batch reads the classifier once when it
                                  starts, so the swap falls between batches and no batch is
                                  ever scored by two models; nothing is dropped or rescored
    rollback                      the same promotion, of the folder active before
    load_champion                 the same checks when the worker starts, on
                                  BRANDMON_MODEL_PATH (load_challenger: on
                                  BRANDMON_CHALLENGER_PATH): a refused folder stops it

A refused model changes nothing but `brandmon_model_promotions_total{outcome}` and the
`last_promotion` that /ready reports; it never stops the worker nor makes /ready fail.
Triggers (the control topic and SIGHUP) are in stream/control.py; docs/model-rollout.md is
the user's guide.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from brandmon.contracts.classifier import Classifier
from brandmon.contracts.manifest import (
    CANONICAL_LABELS,
    MANIFEST_NAME,
    ManifestError,
    load_manifest,
    resolve_model_folder,
    verify_files,
)
from brandmon.metrics import Metrics
from brandmon.settings import ChallengerMode, Settings
from brandmon.stream.challenger import CHALLENGER, CHAMPION, Challenger
from brandmon.stream.scoring import BatchScorer

log = logging.getLogger(__name__)

#: The smoke test's texts: short and long, positive, negative, neutral, odd characters.
SMOKE_TEXTS = (
    "I love this phone, the camera is excellent",
    "worst customer support ever, still broken after two weeks",
    "the store opens at nine tomorrow",
    "ok",
    "🙂 très bien!! #new @brand " + "very long text " * 40,
)
#: How far a row of probabilities may be from summing to 1.
SUM_TOLERANCE = 1e-3

#: Outcomes of a promotion (the `outcome` label of brandmon_model_promotions_total).
PROMOTED = "promoted"
INVALID_MANIFEST = "invalid_manifest"
UNKNOWN_LABELS = "unknown_labels"
BAD_CHECKSUM = "bad_checksum"
LOAD_FAILED = "load_failed"
SMOKE_FAILED = "smoke_failed"
INVALID_REQUEST = "invalid_request"
#: A challenger of the same model_id and version as the champion (records could not tell
#: them apart); and the outcomes of a challenger change that is not a refusal.
SAME_AS_CHAMPION = "same_as_champion"
CHALLENGER_SET = "set"
CHALLENGER_CLEARED = "cleared"

Loader = Callable[[Path], Classifier]


class ModelRejected(Exception):
    """A model folder failed validation; `outcome` names the check, the message says why."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


def validate_model(folder: Path, loader: Loader) -> Classifier:
    """Check `folder` and return its loaded classifier; ModelRejected when any check fails."""
    _check_labels(folder)
    try:
        manifest = load_manifest(folder)
    except ManifestError as exc:
        raise ModelRejected(INVALID_MANIFEST, str(exc)) from exc
    if not manifest.files:
        raise ModelRejected(
            BAD_CHECKSUM, f"{folder / MANIFEST_NAME} lists no file checksums: re-export it"
        )
    bad = verify_files(folder, manifest)
    if bad:
        raise ModelRejected(
            BAD_CHECKSUM,
            f"{folder}: {', '.join(sorted(bad))} missing or not as the manifest's size and "
            "sha256 say (a partial copy or a tampered file): copy the folder again",
        )
    try:
        classifier = loader(folder)
    except ManifestError as exc:  # its message names the file and why
        raise ModelRejected(LOAD_FAILED, str(exc)) from exc
    except Exception as exc:  # any other load failure (ONNX, provider) refuses the model
        raise ModelRejected(LOAD_FAILED, f"{folder} does not load: {exc}") from exc
    smoke_test(classifier)
    return classifier


def _check_labels(folder: Path) -> None:
    """Every label of the manifest maps to a canonical label (read before the full check, so
    that an unknown label is reported as such and not as a generic invalid manifest)."""
    try:
        raw = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: load_manifest reports it
    if not isinstance(raw, dict):
        return
    labels, label_map = raw.get("labels"), raw.get("label_map")
    if not isinstance(labels, list) or not isinstance(label_map, dict):
        return
    unmapped = [label for label in labels if label not in label_map]
    unknown = sorted({str(v) for v in label_map.values()} - set(CANONICAL_LABELS))
    if unmapped or unknown:
        raise ModelRejected(
            UNKNOWN_LABELS,
            f"{folder / MANIFEST_NAME}: labels without a canonical label {unmapped}, unknown "
            f"canonical labels {unknown}; each label must map to one of {list(CANONICAL_LABELS)}",
        )


def smoke_test(classifier: Classifier) -> None:
    """Score SMOKE_TEXTS: one row of finite probabilities in [0, 1] summing to 1 per text."""
    try:
        probs = np.asarray(classifier.predict_proba(list(SMOKE_TEXTS)), dtype=np.float64)
    except Exception as exc:  # a model that cannot score fixed texts is refused
        raise ModelRejected(SMOKE_FAILED, f"scoring the smoke-test texts raised {exc!r}") from exc
    expected = (len(SMOKE_TEXTS), len(CANONICAL_LABELS))
    if probs.shape != expected:
        raise ModelRejected(SMOKE_FAILED, f"smoke test: shape {probs.shape}, expected {expected}")
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1 + SUM_TOLERANCE).any():
        raise ModelRejected(SMOKE_FAILED, "smoke test: probabilities not finite or outside [0, 1]")
    sums = probs.sum(axis=1)
    worst = float(np.abs(sums - 1).max())
    if worst > SUM_TOLERANCE:
        raise ModelRejected(
            SMOKE_FAILED,
            f"smoke test: probabilities sum to {sums.round(4).tolist()}, not 1 (does the "
            "manifest list every output label of the model?)",
        )


@dataclass(frozen=True)
class Promotion:
    """What happened to one promotion request (the `last_promotion` of /ready)."""

    outcome: str
    model_path: str
    requested_by: str
    trigger: str
    detail: str
    at: str
    model_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _provider(classifier: Classifier) -> str:
    return str(getattr(classifier, "provider", "none"))


class ModelRollout:
    """The worker's active model: promotes (validate, then swap between batches) and
    remembers the folder before for rollback. One promotion at a time."""

    def __init__(self, scorer: BatchScorer, metrics: Metrics, folder: Path, loader: Loader) -> None:
        self.scorer = scorer
        self.metrics = metrics
        self.loader = loader
        self.active_path = folder
        self.previous_path: Path | None = None
        self.last: Promotion | None = None
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brandmon-validate")
        self._shown: tuple[str, ...] | None = None
        self._challenger_shown: tuple[str, ...] | None = None
        self.last_challenger: Promotion | None = None
        self._show(scorer.classifier)
        for outcome in (PROMOTED, BAD_CHECKSUM, SMOKE_FAILED):  # zeros from the start
            metrics.model_promotions.labels(outcome=outcome)

    @property
    def classifier(self) -> Classifier:
        return self.scorer.classifier

    async def promote(self, folder: Path, requested_by: str, trigger: str) -> Promotion:
        """Validate `folder` in a thread, then make it the model of the next batch."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                new = await loop.run_in_executor(
                    self._executor, validate_model, folder, self.loader
                )
            except ModelRejected as exc:
                log.warning(
                    "model %s refused (%s, asked by %s via %s): %s; still scoring with %s",
                    folder,
                    exc.outcome,
                    requested_by,
                    trigger,
                    exc.detail,
                    self.classifier.model_id,
                )
                return self._record(exc.outcome, folder, requested_by, trigger, exc.detail)
            old = self.scorer.classifier
            self.scorer.classifier = new  # one assignment: the next batch reads the new model
            if folder != self.active_path:
                self.previous_path, self.active_path = self.active_path, folder
            self._show(new)
            challenger = self.scorer.challenger
            if challenger is not None and challenger.model == (new.model_id, new.model_version):
                self.set_challenger(None)  # the challenger won: it is the champion now
                log.info("the challenger %s is now the champion: challenger cleared", new.model_id)
            detail = f"{old.model_id} -> {new.model_id}"
            log.info("model promoted (asked by %s via %s): %s", requested_by, trigger, detail)
            return self._record(PROMOTED, folder, requested_by, trigger, detail, new.model_id)

    async def change_challenger(
        self,
        folder: Path | None,
        mode: ChallengerMode,
        share: float,
        requested_by: str,
        trigger: str,
    ) -> Promotion:
        """Validate `folder` in a thread and score the next batches with it beside the
        champion; None clears the challenger. A refused folder changes nothing."""
        async with self._lock:
            if folder is None:
                self.set_challenger(None)
                log.info("challenger cleared (asked by %s via %s)", requested_by, trigger)
                return self._record_challenger(CHALLENGER_CLEARED, None, requested_by, trigger, "")
            loop = asyncio.get_running_loop()
            try:
                new = await loop.run_in_executor(
                    self._executor, validate_challenger, folder, self.loader, self.classifier
                )
            except ModelRejected as exc:
                log.warning(
                    "challenger %s refused (%s, asked by %s via %s): %s",
                    folder,
                    exc.outcome,
                    requested_by,
                    trigger,
                    exc.detail,
                )
                return self._record_challenger(
                    exc.outcome, folder, requested_by, trigger, exc.detail
                )
            self.set_challenger(Challenger(new, mode, share, folder))
            how = f"{mode} mode" + (f", share {share}" if mode == "split" else "")
            detail = f"{new.model_id} beside {self.classifier.model_id} in {how}"
            log.info("challenger set (asked by %s via %s): %s", requested_by, trigger, detail)
            return self._record_challenger(
                CHALLENGER_SET, folder, requested_by, trigger, detail, new.model_id
            )

    def _record_challenger(
        self,
        outcome: str,
        folder: Path | None,
        requested_by: str,
        trigger: str,
        detail: str,
        model_id: str | None = None,
    ) -> Promotion:
        self.metrics.challenger_changes.labels(outcome=outcome).inc()
        at = datetime.now(UTC).isoformat()
        path = str(folder) if folder is not None else ""
        self.last_challenger = Promotion(outcome, path, requested_by, trigger, detail, at, model_id)
        return self.last_challenger

    def set_challenger(self, challenger: Challenger | None) -> None:
        """Score the next batches with `challenger` beside the champion (None: stop)."""
        self.scorer.challenger = challenger  # one assignment, read once per batch
        if self._challenger_shown is not None:
            self.metrics.model_info.remove(*self._challenger_shown)
            self._challenger_shown = None
        if challenger is not None:
            clf = challenger.classifier
            labels = (clf.model_id, clf.model_version, CHALLENGER, _provider(clf))
            self.metrics.model_info.labels(*labels).set(1)
            self._challenger_shown = labels
            self.metrics.challenger_errors.labels(mode=challenger.mode)  # zero from the start

    def refuse(self, detail: str, requested_by: str, trigger: str) -> Promotion:
        """Record a request that names no usable folder (e.g. an unreadable control message)."""
        log.warning("model promotion request refused (via %s): %s", trigger, detail)
        return self._record(INVALID_REQUEST, Path(), requested_by, trigger, detail)

    def about(self) -> dict[str, Any]:
        """The model fields of /ready."""
        clf = self.classifier
        return {
            "model_id": clf.model_id,
            "model_version": clf.model_version,
            "model_path": str(self.active_path),
            "previous_model_path": str(self.previous_path) if self.previous_path else None,
            "last_promotion": self.last.as_json() if self.last else None,
            "challenger": challenger.about() if (challenger := self.scorer.challenger) else None,
            "last_challenger_change": self.last_challenger.as_json()
            if self.last_challenger
            else None,
        }

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _record(
        self,
        outcome: str,
        folder: Path,
        requested_by: str,
        trigger: str,
        detail: str,
        model_id: str | None = None,
    ) -> Promotion:
        self.metrics.model_promotions.labels(outcome=outcome).inc()
        at = datetime.now(UTC).isoformat()
        path = str(folder) if folder != Path() else ""
        self.last = Promotion(outcome, path, requested_by, trigger, detail, at, model_id)
        return self.last

    def _show(self, classifier: Classifier) -> None:
        """brandmon_model_info names the active model only: the old series is removed."""
        labels = (classifier.model_id, classifier.model_version, CHAMPION, _provider(classifier))
        if self._shown is not None and self._shown != labels:
            self.metrics.model_info.remove(*self._shown)
        self.metrics.model_info.labels(*labels).set(1)
        self._shown = labels


class ModelFolderError(ValueError):
    """A model folder the settings name (BRANDMON_MODEL_PATH, BRANDMON_CHALLENGER_PATH) is not
    usable: the worker does not start, and `brandmon worker` exits with EXIT_BAD_MODEL."""


class ChallengerError(ModelFolderError):
    """BRANDMON_CHALLENGER_PATH names no usable model: the worker does not start."""


def _refused(variable: str, folder: Path, rejected: ModelRejected) -> str:
    return f"{variable} {folder} refused ({rejected.outcome}): {rejected.detail}"


def load_champion(settings: Settings, loader: Loader) -> tuple[Path, Classifier]:
    """The folder BRANDMON_MODEL_PATH names (a symlink or pointer file followed) and its
    classifier, checked as a promotion checks a folder; ModelFolderError when it fails."""
    try:
        folder = resolve_model_folder(settings.resolved_model_path)
    except ManifestError as exc:
        raise ModelFolderError(f"BRANDMON_MODEL_PATH: {exc}") from exc
    try:
        return folder, validate_model(folder, loader)
    except ModelRejected as exc:
        raise ModelFolderError(_refused("BRANDMON_MODEL_PATH", folder, exc)) from exc


def validate_challenger(folder: Path, loader: Loader, champion: Classifier) -> Classifier:
    """`validate_model`, and the challenger must not be the champion's model id and version
    (records name the model that scored them, so the two must differ)."""
    classifier = validate_model(folder, loader)
    ids = (classifier.model_id, classifier.model_version)
    if ids == (champion.model_id, champion.model_version):
        raise ModelRejected(
            SAME_AS_CHAMPION,
            f"the challenger {folder} is {ids[0]} version {ids[1]}, like the champion: "
            "records could not tell the two apart; export it with its own name or version",
        )
    return classifier


def load_challenger(
    settings: Settings, loader: Loader, champion_folder: Path, champion: Classifier
) -> Challenger | None:
    """The challenger the settings name, validated like a promoted model, or None."""
    if settings.challenger_path is None:
        return None
    try:
        folder = resolve_model_folder(settings.challenger_path)
    except ManifestError as exc:
        raise ChallengerError(f"BRANDMON_CHALLENGER_PATH: {exc}") from exc
    if not folder.is_dir():
        raise ChallengerError(
            f"BRANDMON_CHALLENGER_PATH {folder} is not a folder: give a model folder made by "
            "`brandmon export` (or a symlink or pointer file naming one), or unset it"
        )
    if folder == champion_folder.resolve():
        raise ChallengerError(
            f"BRANDMON_CHALLENGER_PATH names {folder}, the champion's own folder: give another "
            "model folder (made by `brandmon export`), or unset it"
        )
    try:
        classifier = validate_challenger(folder, loader, champion)
    except ModelRejected as exc:
        raise ChallengerError(_refused("BRANDMON_CHALLENGER_PATH", folder, exc)) from exc
    return Challenger(classifier, settings.challenger_mode, settings.challenger_share, folder)
