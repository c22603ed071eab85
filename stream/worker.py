"""`brandmon worker`: build the Faust app with its agents, health and metrics pages, and run it.

The score worker runs only the score agent. The alert aggregator (`brandmon alerts worker`)
is a separate Faust app and process: measured here, a Faust app that also holds a
changelog-backed table resumed the posts stream after a restart from prefetched offsets
before seeking to the committed ones, so the score agent skipped records (faust issues 216
and 221 describe the same race). Without a table the restart resumes exactly where it left.

A new model is promoted (or rolled back) without a restart: through the control topic or
SIGHUP (stream/control.py), validated off the event loop and swapped between batches
(stream/rollout.py). BRANDMON_CHALLENGER_PATH adds a challenger model beside it, in shadow
or split mode (stream/challenger.py), validated at start like a promoted model.

Start-up fails fast, with a message that names the problem, when a GPU provider is asked
for and absent, when no broker answers, or when the model folder (or the challenger's) fails
the checks of a promotion (stream/rollout.py): then `brandmon worker` prints one line naming
the file and what is wrong, and exits with EXIT_BAD_MODEL.
SIGTERM/SIGINT stop the worker cleanly: the batch in hand gets stop_grace_seconds to be
delivered and committed. A fatal delivery error or a bug ends the process with exit code 70
without committing past the last delivered record (brandmon/batches.py).
"""

from __future__ import annotations

import faulthandler
import logging
from dataclasses import dataclass

import faust

from brandmon.contracts.classifier import Classifier
from brandmon.contracts.manifest import resolve_model_folder
from brandmon.faust_app import create_app
from brandmon.kafka_io import check_broker, ensure_topics
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.stream.agent import ScoreAgent
from brandmon.stream.classifier import check_provider, loader_for
from brandmon.stream.control import ControlFollower, ensure_control_topic, install_sighup
from brandmon.stream.rollout import ModelRollout, load_challenger, load_champion
from brandmon.stream.routing import router_for
from brandmon.web import Health, add_health

log = logging.getLogger(__name__)

#: Exit status of `brandmon worker` when a model folder fails its start-up check (sysexits'
#: EX_DATAERR): a restart cannot help until the folder is fixed.
EXIT_BAD_MODEL = 65


@dataclass
class Worker:
    """Everything one worker process runs, built once from the settings."""

    settings: Settings
    metrics: Metrics
    classifier: Classifier
    app: faust.App
    score: ScoreAgent
    rollout: ModelRollout


def build_worker(settings: Settings, classifier: Classifier | None = None) -> Worker:
    """Check and load the model, check the broker, declare topics and wire agents and pages."""
    metrics = Metrics(max_brand_series=settings.max_brand_series)
    loader = loader_for(settings)
    if classifier is None:
        check_provider(settings)
        folder, classifier = load_champion(settings, loader)
    else:
        folder = resolve_model_folder(settings.resolved_model_path)
    challenger = load_challenger(settings, loader, folder, classifier)
    check_broker(settings)
    ensure_topics(settings, _topics(settings))
    ensure_control_topic(settings)
    router = router_for(settings, metrics, loader)
    app = create_app(settings)
    score = ScoreAgent(app, settings, metrics, classifier, router=router)
    rollout = ModelRollout(score.scorer, metrics, folder, loader)
    rollout.set_challenger(challenger)
    worker = Worker(settings, metrics, classifier, app, score, rollout)
    follower = ControlFollower(settings, rollout)

    @app.task
    async def follow_rollouts() -> None:
        install_sighup(settings, rollout)
        await follower.run()

    health = Health(
        app,
        settings,
        metrics,
        group=settings.app_id,
        topic=settings.topic_posts,
        agents=[worker.score.progress],
        details=rollout.about,
    )
    add_health(health)
    return worker


def _topics(settings: Settings) -> list[str]:
    # the shadow topic too: a challenger in shadow mode can be set at run time
    return [
        settings.topic_posts,
        settings.topic_scored,
        settings.topic_dlq,
        settings.topic_scored_dlq,
        settings.topic_alerts,
        settings.topic_brand_sentiment,
        settings.topic_scored_shadow,
    ]


def run_worker(settings: Settings, classifier: Classifier | None = None) -> None:
    """Run until SIGTERM/SIGINT; raises before starting when the model or broker is missing.
    `classifier` replaces the model's (tests run the worker on a fake one)."""
    worker = build_worker(settings, classifier)
    log.info(
        "worker %s: model %s on %s, batches of up to %d within %.3f s",
        settings.app_id,
        worker.rollout.classifier.model_id,
        settings.bootstrap_servers,
        settings.max_batch,
        settings.max_wait,
    )
    # a crash in native code (librdkafka, ONNX Runtime) leaves the Python stacks in the log
    # instead of a silent exit
    faulthandler.enable()
    faust_worker = faust.Worker(
        worker.app, loglevel=settings.log_level.lower(), override_logging=True
    )
    try:
        faust_worker.execute_from_commandline()
    finally:
        worker.rollout.close()
        worker.score.close()
