"""The one settings object of brandmon, read from BRANDMON_* environment variables.

Built once at start-up (`Settings()`) and passed down; nothing else reads os.environ.
Nested groups use a double underscore: BRANDMON_ALERTS__BUCKET_SECONDS=60.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.config import AlertSettings

#: Where the shipped default model lives, relative to the repository / installed tree.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "brandmon-sentiment-minilm"

Provider = Literal["cpu", "cuda", "tensorrt"]
Variant = Literal["auto", "int8", "fp32", "fp16"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class Settings(BaseSettings):
    """Everything a brandmon process can be told. Secrets are SecretStr and never logged."""

    model_config = SettingsConfigDict(
        env_prefix="BRANDMON_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
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
    #: Partitions for topics brandmon creates; scale-out is by partitions and workers.
    topic_partitions: int = Field(4, gt=0)
    topic_replication: int = Field(1, gt=0)

    #: Consumer group (Faust app id) of the score workers.
    app_id: str = "brandmon-scorer"
    #: Consumer group of the alert workers (`brandmon alerts worker`), a separate process: a
    #: Faust app that holds a table must not also run the score agent (see stream/worker.py).
    alerts_app_id: str = "brandmon-alerts"
    #: Faust's table and state directory.
    data_dir: Path = Path(".brandmon/worker")

    # --- batching ------------------------------------------------------------------------
    max_batch: int = Field(64, gt=0, le=4096, description="Most posts the agent takes at once.")
    max_wait: float = Field(0.1, gt=0, le=60, description="Seconds to wait to fill a batch.")

    # --- model ---------------------------------------------------------------------------
    #: A folder with manifest.json; None = the default model shipped in models/.
    model_path: Path | None = None
    model_variant: Variant = "auto"
    execution_provider: Provider = "cpu"
    #: ONNX Runtime intra-op threads; 0 = one per core.
    ort_threads: int = Field(0, ge=0)
    #: Texts per ONNX Runtime call, after sorting the batch by length.
    micro_batch: int = Field(32, gt=0)

    # --- observability -------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    #: Port of the alert worker's /metrics, /live and /ready.
    alerts_web_port: int = Field(6067, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    alerts: AlertSettings = AlertSettings()

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_not_empty(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("bootstrap_servers is empty: give host:port[,host:port...]")
        return ",".join(servers)

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
