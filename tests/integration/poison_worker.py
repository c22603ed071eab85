"""`brandmon worker` on the fake classifier in place of the ONNX model, for tests that need a
model to raise on one post: a post whose text holds POISON is dead-lettered `inference_failed`,
the one dead-letter reason that no record's bytes cause by themselves.

    python -m tests.integration.poison_worker    (tests.helpers.WorkerProcess(module=...))
"""

from __future__ import annotations

import logging

from brandmon.settings import load_settings
from brandmon.stream.worker import run_worker
from brandmon.tools.fake_classifier import FakeClassifier

#: The word that makes the fake model raise on the posts that hold it.
POISON = "poison"


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level)
    run_worker(settings, FakeClassifier(poison=POISON))


if __name__ == "__main__":
    main()
