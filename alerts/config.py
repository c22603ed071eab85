"""Settings of the spike detector and the notifiers (nested in brandmon's settings as `alerts`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AlertSettings(BaseModel):
    """Every knob of the alert path; env vars look like BRANDMON_ALERTS__BUCKET_SECONDS=60."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    bucket_seconds: int = Field(60, gt=0, description="Width of an event-time bucket.")
    window_buckets: int = Field(5, gt=0, description="Buckets in the sliding evaluation window.")
    allowed_lateness_seconds: int = Field(30, ge=0)
    pagerduty_routing_key: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    webhook_url: SecretStr | None = None
