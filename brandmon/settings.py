"""The one settings object of brandmon, read from BRANDMON_* environment variables.

Built once at start-up and passed down; nothing else reads os.environ. Commands build it with
`load_settings()`, which turns a validation error into a message that names the variable and
never shows a secret, and masks the secrets in every log record of the process.
Nested groups use a double underscore: BRANDMON_ALERTS__BUCKET_SECONDS=60.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from brandmon.alert_settings import AlertSettings

#: The shipped default model: package data of the wheel; in a checkout brandmon/models is a
#: symlink to models/, so the same path works in both.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "brandmon-sentiment-minilm"

Provider = Literal["cpu", "cuda", "tensorrt"]
Variant = Literal["auto", "int8", "fp32", "fp16"]
ChallengerMode = Literal["shadow", "split"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class Settings(BaseSettings):
    """Everything a brandmon process can be told. Secrets are SecretStr and never logged."""

    model_config = SettingsConfigDict(
        env_prefix="BRANDMON_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
        # a validation error never quotes the input (it may hold a secret); see load_settings
        hide_input_in_errors=True,
    )

    # --- Kafka ---------------------------------------------------------------------------
    bootstrap_servers: str = "localhost:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    topic_posts: str = "posts"
    topic_scored: str = "posts.scored"
    topic_dlq: str = "posts.dlq"
    topic_alerts: str = "alerts"
    topic_brand_sentiment: str = "brand.sentiment"
    #: Alerts a notification channel could not deliver in time (or rejected), with the
    #: channel and the reason (alerts/dispatch.py).
    topic_alerts_dlq: str = "alerts.dlq"
    #: Records on the scored topic that the alert stage cannot read, with their reason.
    topic_scored_dlq: str = "posts.scored.dlq"
    #: Shadow mode: the challenger's scored posts, one per post on topic_scored (same id).
    topic_scored_shadow: str = "posts.scored.shadow"
    #: Compacted topic of model rollout requests (`brandmon model promote/rollback`), keyed by
    #: the score workers' group (app_id); every worker of the group follows it
    #: (docs/model-rollout.md). The score worker creates it at start.
    topic_control: str = "brandmon.control"
    #: Partitions for topics brandmon creates; scale-out is by partitions and workers.
    topic_partitions: int = Field(4, gt=0)
    topic_replication: int = Field(1, gt=0)

    #: Consumer group (Faust app id) of the score workers.
    app_id: str = "brandmon-scorer"
    #: Consumer group of the alert workers (`brandmon alerts worker`), a separate process: a
    #: Faust app that holds a table must not also run the score agent (see stream/worker.py).
    alerts_app_id: str = "brandmon-alerts"
    #: Consumer group of the notifier dispatcher (its own position on the alerts topic);
    #: None = "<alerts_app_id>-notify". See `notifier_group`.
    notifier_group_id: str | None = None
    #: Faust's table and state directory.
    data_dir: Path = Path(".brandmon/worker")

    # --- batching ------------------------------------------------------------------------
    max_batch: int = Field(64, gt=0, le=4096, description="Most posts the agent takes at once.")
    #: The alert worker waits up to this long to fill a batch. The score worker never waits:
    #: its next batch goes to the model as soon as the model is free (brandmon/batches.py).
    max_wait: float = Field(0.1, gt=0, le=60, description="Seconds to wait to fill a batch.")
    #: Score worker: the most seconds one batch may spend being scored (parse, tokenize,
    #: inference, serialise); batches are capped at what the model scores in that time at its
    #: measured speed. A post waits at most about one batch in progress plus its own, so the
    #: latency budget is about twice this plus delivery. 0 = no cap (max_batch only).
    max_batch_seconds: float = Field(0.25, ge=0, le=60)

    # --- model ---------------------------------------------------------------------------
    #: A folder with manifest.json, a symlink to one, or an "active model" pointer file (a
    #: text file whose first line names the folder, relative to the file's own folder);
    #: None = the default model shipped in models/. SIGHUP makes a running score worker
    #: re-read a symlink's or pointer's target and promote it (docs/model-rollout.md).
    model_path: Path | None = None
    model_variant: Variant = "auto"
    execution_provider: Provider = "cpu"
    #: ONNX Runtime intra-op threads; 0 = one per core.
    ort_threads: int = Field(0, ge=0)
    #: Whether ONNX Runtime's idle threads spin (busy-wait) for the next parallel section
    #: instead of sleeping. Spinning saves microseconds per operator on an idle machine and
    #: burns the cores the event loop and the Kafka clients need in a worker.
    ort_spinning: bool = False
    #: Texts per ONNX Runtime call, after sorting the batch by length.
    micro_batch: int = Field(32, gt=0)
    #: A second model folder (validated like a promoted model) scored beside the champion;
    #: None = no challenger, and the worker does no extra work (docs/model-rollout.md).
    challenger_path: Path | None = None
    #: shadow: every post is also scored by the challenger, whose records go to
    #: topic_scored_shadow; split: a stable hash of the brand sends challenger_share of the
    #: brands to the challenger, whose records go to topic_scored like the champion's.
    challenger_mode: ChallengerMode = "shadow"
    #: Split mode: the share of brands (0 to 1) the challenger scores.
    challenger_share: float = Field(0.1, ge=0, le=1)

    # --- languages (docs/languages.md) -----------------------------------------------------
    #: Find each post's language and route it to a model that reads it. Off: every post goes
    #: to the model above, as before language routing.
    lang_routing: bool = True
    #: Language code -> model folder (made by `brandmon export --languages ...`, whose manifest
    #: must list that language), as JSON: BRANDMON_LANG_MODELS='{"fr": "/models/fr"}'. The
    #: model above reads the languages its own manifest lists (the shipped one: English).
    lang_models: dict[str, Path] = Field(default_factory=dict)
    #: A post in a language no model reads: "unscored" writes it with label null and
    #: unscored_reason "no_model_for_language"; "fallback" scores it with the model above.
    lang_no_model: Literal["unscored", "fallback"] = "unscored"
    #: A post whose language could not be told (`und`): "fallback" scores it with the model
    #: above (emoji-only and one-word posts are mostly in the feed's main language);
    #: "unscored" leaves it unscored ("undetermined_language").
    lang_undetermined: Literal["unscored", "fallback"] = "fallback"
    #: Fewer letters than this (links, @mentions and emoji not counted): too short to tell.
    lang_min_letters: int = Field(4, ge=1)
    #: Without a producer hint, the detector's least probability to name a language.
    lang_min_confidence: float = Field(0.7, ge=0, le=1)
    #: The least probability for which the detector overrules a producer's `lang`.
    lang_override_confidence: float = Field(0.9, ge=0, le=1)

    # --- reliability ---------------------------------------------------------------------
    #: /ready turns 503 (and brandmon_agent_stalled turns 1) when an agent has acked nothing
    #: for this long while its partitions have records waiting.
    stall_seconds: float = Field(60.0, gt=0)
    #: A worker that dies without leaving its group (SIGKILL, OOM, a lost host) keeps its
    #: partitions this long before the others take them over (the broker's
    #: group.min.session.timeout.ms, 6 s by default, is the floor).
    session_timeout_seconds: float = Field(15.0, ge=6, le=300)
    #: On SIGTERM, seconds the batch in hand gets to be delivered before it is left unacked.
    stop_grace_seconds: float = Field(10.0, ge=0)
    #: Alert stage memory bounds: parsed brand states cached (the rest stay in the table)
    #: and brands with per-brand metric series (the least recently updated are evicted).
    #: The score worker's brandmon_predictions_total keeps the first max_brand_series brands
    #: it sees and counts the rest as brand "_other" (counters are not evicted).
    max_tracked_brands: int = Field(10_000, gt=0)
    max_brand_series: int = Field(1_000, gt=0)

    # --- observability -------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    #: Port of the alert worker's /metrics, /live and /ready.
    alerts_web_port: int = Field(6067, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    alerts: AlertSettings = AlertSettings()

    # --- labeling: Label Studio (`brandmon label serve/export/import`) -----------------------
    #: Where Label Studio answers; `brandmon label serve` starts one there.
    label_studio_url: str = "http://127.0.0.1:8080"
    #: API token: a legacy token (what `label serve` sets up) or a personal access token.
    label_studio_token: SecretStr | None = None
    #: Label Studio's own virtual environment (`make label-studio` creates it).
    label_studio_venv: Path = Path("~/.cache/brandmon/label-studio-venv")
    #: SQLite database, uploads and exports of the local server.
    label_studio_data_dir: Path = Path(".brandmon/label-studio")
    #: Admin user `label serve` creates on the first start of a data folder.
    label_studio_username: str = "admin@brandmon.local"
    label_studio_password: SecretStr | None = None
    #: Project that `label export` fills and `label import` reads.
    label_studio_project: str = "brandmon sentiment"

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_not_empty(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("bootstrap_servers is empty: give host:port[,host:port...]")
        return ",".join(servers)

    @model_validator(mode="after")
    def _sasl_needs_a_sasl_protocol(self) -> Settings:
        given = [
            name
            for name, value in (
                ("BRANDMON_SASL_USERNAME", self.sasl_username),
                ("BRANDMON_SASL_PASSWORD", self.sasl_password),
                ("BRANDMON_SASL_MECHANISM", self.sasl_mechanism),
            )
            if value is not None
        ]
        if given and not self.security_protocol.startswith("SASL_"):
            raise ValueError(
                f"{', '.join(given)} set but BRANDMON_SECURITY_PROTOCOL is "
                f"{self.security_protocol}, so they would be ignored: set "
                "BRANDMON_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        return self

    @model_validator(mode="after")
    def _challenger_settings_agree(self) -> Settings:
        set_here = self.model_fields_set
        if self.challenger_path is None:
            given = [
                f"BRANDMON_{name.upper()}"
                for name in ("challenger_mode", "challenger_share")
                if name in set_here
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but BRANDMON_CHALLENGER_PATH is not, so there is "
                    "no challenger to use them: set BRANDMON_CHALLENGER_PATH to a model folder, "
                    "or unset them"
                )
        elif self.challenger_mode == "shadow" and "challenger_share" in set_here:
            raise ValueError(
                "BRANDMON_CHALLENGER_SHARE applies to BRANDMON_CHALLENGER_MODE=split only (shadow "
                "mode scores every post with both models): set the mode to split, or unset it"
            )
        others = {
            self.topic_posts,
            self.topic_scored,
            self.topic_dlq,
            self.topic_scored_dlq,
            self.topic_alerts,
            self.topic_alerts_dlq,
            self.topic_brand_sentiment,
            self.topic_control,
        }
        if self.topic_scored_shadow in others:
            raise ValueError(
                f"BRANDMON_TOPIC_SCORED_SHADOW is {self.topic_scored_shadow!r}, a topic brandmon "
                "already uses for another purpose: give the shadow records their own topic "
                "(default posts.scored.shadow)"
            )
        return self

    @property
    def notifier_group(self) -> str:
        """Consumer group of the notifier dispatcher."""
        return self.notifier_group_id or f"{self.alerts_app_id}-notify"

    def secret_values(self) -> list[str]:
        """Every secret value set (for redaction; never print these)."""
        values = (
            self.sasl_password,
            self.alerts.pagerduty_routing_key,
            self.alerts.slack_webhook_url,
            self.alerts.webhook_url,
            self.label_studio_token,
            self.label_studio_password,
        )
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    @property
    def resolved_model_path(self) -> Path:
        return self.model_path if self.model_path is not None else DEFAULT_MODEL_DIR

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings for confluent-kafka clients (producer, consumer, admin)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else ""
            )
        if self.ssl_cafile:
            conf["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            conf["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            conf["ssl.key.location"] = str(self.ssl_keyfile)
        return conf


# --- loading at start-up ---------------------------------------------------------------------

#: Exit status of a command whose settings are invalid (as for a bad command-line option).
EXIT_BAD_SETTINGS = 2


def load_settings(*, redact_logs: bool = True) -> Settings:
    """The settings from BRANDMON_* variables, for a command at start-up.

    When they are invalid, prints one line per problem naming the variable and what is wrong,
    with no input value and any piece of a secret masked, and exits with status 2. With
    `redact_logs`, every log record of the process from now on has the secrets masked too.
    """
    from brandmon.redaction import Redactor, install_log_redaction

    try:
        settings = Settings()
    except ValidationError as exc:
        _report_invalid(_describe(exc))
        raise SystemExit(EXIT_BAD_SETTINGS) from exc
    except SettingsError as exc:
        # raised before validation, e.g. a nested group (BRANDMON_ALERTS) that is not JSON;
        # its text names the field and the source, never the value
        _report_invalid([f"{exc}: check the BRANDMON_* variable of that field"])
        raise SystemExit(EXIT_BAD_SETTINGS) from exc
    if redact_logs:
        install_log_redaction(Redactor(settings.secret_values()))
    return settings


def variable_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a validation error's location (BRANDMON_ALERTS__X)."""
    names: list[str] = []
    for part in loc:
        if not isinstance(part, str):
            break  # an index into a list value: the variable is the list's
        names.append(part.upper())
    if not names:  # a check across several variables; its message names them
        return "BRANDMON_*"
    name = "BRANDMON_" + "__".join(names)
    return f"{name}__*" if names == ["ALERTS"] else name


def _secret_field_names() -> set[str]:
    return {
        name
        for model in (Settings, AlertSettings)
        for name, info in model.model_fields.items()
        if "SecretStr" in str(info.annotation)
    }


def _secret_inputs(value: Any, secret: bool, secret_names: set[str]) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, str) and secret:
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_inputs(item, secret or key in secret_names, secret_names)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_inputs(item, secret, secret_names)


def _describe(exc: ValidationError) -> list[str]:
    """One line per error: variable, message; secrets in the inputs masked from the text."""
    from brandmon.redaction import Redactor

    secret_names = _secret_field_names()
    secrets: list[str] = []
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        at_secret = any(part in secret_names for part in loc)
        secrets.extend(_secret_inputs(error.get("input"), at_secret, secret_names))
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{variable_name(loc)}: {message}")
    redact = Redactor(secrets)
    return [redact(line) for line in lines]


def _report_invalid(problems: list[str]) -> None:
    body = "\n".join(f"  - {problem}" for problem in problems)
    sys.stderr.write(
        f"brandmon: invalid settings, nothing was started:\n{body}\n"
        "Fix these BRANDMON_* environment variables and run the command again "
        "(README.md lists them).\n"
    )
