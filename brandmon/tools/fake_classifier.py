"""A deterministic stand-in for the ONNX classifier, for tests of the stream and the alerts.

It implements `brandmon.contracts.classifier.Classifier` from word lists alone, so the
scoring and alert paths can be tested without a model file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from brandmon.contracts.classifier import Probabilities
from brandmon.contracts.manifest import CANONICAL_LABELS


class FakeClassifier:
    """Deterministic stand-in for tests of the stream and alerts: no model file needed.

    A text containing a word from `negative_words` is negative, one from `positive_words`
    positive, anything else neutral; a text containing `poison` makes the whole call raise, as
    a model that chokes on one input would.
    """

    model_id = "fake@0"
    model_version = "0"

    def __init__(
        self,
        negative_words: Sequence[str] = ("bad", "awful", "hate", "broken", "terrible"),
        positive_words: Sequence[str] = ("good", "great", "love", "excellent"),
        poison: str | None = None,
    ) -> None:
        self.negative_words = tuple(negative_words)
        self.positive_words = tuple(positive_words)
        self.poison = poison
        self.calls: list[int] = []

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), len(CANONICAL_LABELS)), dtype=np.float32)
        for row, text in enumerate(texts):
            lowered = text.lower()
            if self.poison is not None and self.poison in lowered:
                raise RuntimeError(f"fake model cannot score {text[:30]!r}")
            if any(w in lowered for w in self.negative_words):
                column = 0
            elif any(w in lowered for w in self.positive_words):
                column = 2
            else:
                column = 1
            # a stable, text-dependent confidence so ties never happen
            jitter = int(hashlib.sha256(text.encode()).hexdigest()[:4], 16) / 0xFFFF * 0.1
            out[row, :] = (0.1 - jitter / 2) / 2
            out[row, column] = 0.9 + jitter / 2
        return out
