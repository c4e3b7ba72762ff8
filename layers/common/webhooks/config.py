"""Configuration: every environment variable read once into a validated, typed object.

Handlers call :func:`load_settings` at import time (a Lambda cold start) and pass the
result down. A bad value raises :class:`ConfigError` whose message names the variable, so a
misconfigured function fails at start with a sentence instead of a traceback in the middle
of a request.

In the layer, only :mod:`webhooks.observability` reads ``os.environ`` besides this module,
because it runs at import, before any settings exist: ``WEBHOOKS_STACK`` (the metric
dimension, needed on the first metric flushed), ``WEBHOOKS_LOG_FORMAT`` (human lines for the
local API workers) and Powertools' own variables (``POWERTOOLS_*``, ``LAMBDA_TASK_ROOT``,
``AWS_SAM_LOCAL``), read by Powertools' rules. The CLI (``cli/webhooks_cli``) also reads and
sets variables before it loads settings: it fills in the endpoints of the local runtime
(``AWS_ENDPOINT_URL``, ``MONGO_URI``, the queue URLs, ``ADMIN_API_KEY``), which
:func:`load_settings` then validates; ``WEBHOOKS_LOCAL_DIR`` is its own, and it reads
``PORT`` through these settings.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError as ConfigError  # defined in the tree, raised here

SQS_MAX_VISIBILITY_SECONDS = 43_200
SQS_MAX_MESSAGE_BYTES = 1_048_576


# Every retry schedule fits in 30 days (the endpoints contract), held to it: the Node
# settings' (below), WEBHOOK_RETRY_SCHEDULE's and each endpoint's own (delivery/schedule.py:
# RetrySchedule's total). webhooks.queues.MAX_AGE_SECONDS, the bound that dead-letters a
# delivery looping for too long, leaves 5 days beyond it for pauses, rate-limit deferrals,
# store outages and the POSTs themselves. (Every retry is a new message, so SQS's 14-day
# retention bounds one copy, never a delivery's whole schedule.)
SCHEDULE_BOUND_SECONDS = 30 * 86_400
# the settings that keep the Node service's meaning when set (delivery/schedule.py)
NODE_RETRY_SETTINGS = ("webhook_max_attempts", "webhook_retry_delay")
_WHOLE_SECONDS = re.compile(r"[0-9]+")


def longest_retry_schedule(max_attempts: int, base_delay_ms: int) -> float:
    """Seconds of waiting between the first attempt and the last at most: each wait
    ``base * 2^(n-1)``, at least 1 s, capped at SQS's 43,200 s, and 20% more (the jitter,
    counted as added to be on the safe side)."""
    return sum(
        1.2 * min(max(base_delay_ms * 2.0 ** min(n - 1, 32) / 1000, 1.0), SQS_MAX_VISIBILITY_SECONDS)
        for n in range(1, max_attempts)
    )


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    try:
        port_readable = parts.port is None or parts.port >= 0  # .port raises for "x:abc"
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port_readable


_KEY_HASH = re.compile(r"[0-9a-f]{64}")


def parse_key_hashes(value: str) -> tuple[str, ...]:
    """One or more SHA-256 hex digests separated by commas or whitespace (several during a
    key rotation: "new,old"). The ValueError says what is wrong, never the value."""
    parts = [part.lower() for part in re.split(r"[\s,]+", value) if part]
    if not parts:
        raise ValueError("holds no SHA-256 hex digest")
    for number, part in enumerate(parts, 1):
        if not _KEY_HASH.fullmatch(part):
            raise ValueError(f"item {number} of {len(parts)} is not a SHA-256 hex digest (64 hex characters)")
    return tuple(dict.fromkeys(parts))


class Settings(BaseModel):
    """The environment's values, validated: built by :func:`load_settings` (which reads the
    variables) rather than by pydantic-settings, which cost 15-18 ms of a dispatch or deliver
    cold start (docs/PERFORMANCE.md, A/B, 2026-12-05) for what is a lookup per field."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    port: int = Field(3000, ge=1, le=65535)
    mongo_uri: str | None = None
    # On AWS the connection string is a secret: the name of an SSM SecureString parameter
    # holding it, read (decrypted) once per cold start. MONGO_URI, when set, wins.
    mongo_uri_parameter: str | None = None
    mongo_db_name: str = Field("recart_webhook_db", min_length=1)
    # Connections per process at most. On Lambda every instance holds its own pool: the
    # connection budget is the sum over the functions of (maximum concurrency x this).
    mongo_max_pool_size: int | None = Field(None, ge=1, le=500)
    # The retry schedule. Unset (or blank), the service's default is WEBHOOK_RETRY_SCHEDULE,
    # else Standard Webhooks' day-long one; either of these two set keeps the Node service's
    # meaning instead: this many attempts, the 2nd after this many ms, doubling
    # (delivery/schedule.py: service_default). Not both kinds at once.
    webhook_max_attempts: int = Field(3, ge=1, le=100)
    webhook_retry_delay: int = Field(2500, ge=0, le=SQS_MAX_VISIBILITY_SECONDS * 1000)
    # seconds between attempts, comma-separated ("5,300,1800"): RetrySchedule's bounds
    webhook_retry_schedule: tuple[int, ...] | None = None
    webhook_timeout: int = Field(5000, ge=1, le=900_000)
    worker_concurrency: int = Field(5, ge=1, le=100)
    batch_size: int = Field(100, ge=1, le=10_000)
    events_queue_url: str | None = None
    events_dlq_url: str | None = None
    delivery_queue_url: str | None = None
    delivery_dlq_url: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str = Field("us-east-1", validation_alias="AWS_DEFAULT_REGION")
    allow_private_destinations: bool = False
    localstack_host: str | None = None

    # Beyond the seed's variables: limits and cache lifetimes, all with safe defaults.
    cache_ttl_seconds: float = Field(30.0, ge=0, le=3600)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=10 * 1_048_576)
    max_message_bytes: int = Field(262_144, ge=1024, le=SQS_MAX_MESSAGE_BYTES)
    idempotency_ttl_hours: float = Field(24.0, gt=0, le=24 * 30)
    secret_overlap_hours: float = Field(24.0, ge=0, le=24 * 30)
    response_body_limit: int = Field(65_536, ge=0, le=10 * 1_048_576)
    retry_after_max_seconds: int = Field(3600, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    # the share of delivered attempts that get a log line (failures always do; the delivery
    # log in MongoDB keeps every attempt): CloudWatch Logs is billed per byte ingested
    success_log_sample_rate: float = Field(1.0, ge=0, le=1)

    # Operations: the delivery log, and the admin credential of the management API (its
    # SHA-256, or the key itself, hashed on load; neither set turns the admin API off).
    # Events of types not in the catalog: accepted (the default) or refused with a 400.
    unregistered_event_types: Literal["accept", "reject"] = "accept"
    delivery_log_enabled: bool = True
    delivery_log_ttl_days: float = Field(30.0, gt=0, le=3650)
    # several hashes, comma-separated, are all accepted (a rotation's overlap)
    admin_api_key_hash: str | None = None
    admin_api_key: SecretStr | None = None
    # the name of an SSM parameter holding the hash(es) instead: read at run time (cached
    # a minute), so a rotation needs no redeploy and no hash sits in the function's config
    admin_api_key_hash_parameter: str | None = None
    # failed admin keys from one source address within a minute before its wrong keys get
    # 429s (the right key is always accepted); the same for partners' API keys
    admin_auth_max_failures: int = Field(10, ge=1, le=1_000_000)
    partner_auth_max_failures: int = Field(10, ge=1, le=1_000_000)
    # failed portal tokens, counted on their own (never turning a token's 401 into a 429
    # because of wrong API keys); higher, as a console in several tabs retries an expired one
    portal_token_max_failures: int = Field(100, ge=1, le=1_000_000)

    # Endpoint health: an endpoint whose attempts have all failed, at least this many
    # times and for at least this long, is disabled (0 failures: never). Svix: 5 days.
    endpoint_disable_after_failures: int = Field(10, ge=0, le=1_000_000)
    endpoint_disable_after_seconds: float = Field(5 * 86_400, ge=0, le=365 * 86_400)

    @field_validator(
        "mongo_uri",
        "mongo_uri_parameter",
        "events_queue_url",
        "events_dlq_url",
        "delivery_queue_url",
        "delivery_dlq_url",
        "aws_endpoint_url",
        "localstack_host",
        "admin_api_key_hash",
        "admin_api_key",
        "admin_api_key_hash_parameter",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="before")
    @classmethod
    def _blank_retry_settings_are_unset(cls, values: Any) -> Any:
        # The template passes these to every function, blank by default: a blank one must be
        # unset (its default, and not counted as set by service_default), not a bad number.
        if isinstance(values, dict):
            names = (*NODE_RETRY_SETTINGS, "webhook_retry_schedule")
            values = {
                k: v for k, v in values.items() if not (k in names and isinstance(v, str) and not v.strip())
            }
        return values

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _waits_from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        parts = [part for part in re.split(r"[\s,]+", value) if part]
        if not all(_WHOLE_SECONDS.fullmatch(part) for part in parts):
            raise ValueError("must be whole seconds separated by commas, e.g. 5,300,1800")
        return tuple(int(part) for part in parts)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_within_bounds(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        # imported here: delivery.schedule imports this module (Settings, the bound)
        from .delivery.schedule import RetrySchedule

        try:
            RetrySchedule.model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = f"wait {int(error['loc'][0]) + 1}: " if error["loc"] else ""
            raise ValueError(where + error["msg"]) from None
        return value

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        # botocore's own refusal ("Invalid endpoint: ...") names the value, not the variable
        if value is None:
            return None
        value = value.strip()
        if not _is_http_url(value):
            raise ValueError("must be an http(s) URL, e.g. http://127.0.0.1:4566")
        return value

    @field_validator("admin_api_key_hash")
    @classmethod
    def _key_hashes(cls, value: str | None) -> str | None:
        if value is not None:
            parse_key_hashes(value)  # its ValueError names the problem, not the value
        return value

    @model_validator(mode="after")
    def _one_kind_of_schedule(self) -> Settings:
        node = [name.upper() for name in NODE_RETRY_SETTINGS if name in self.model_fields_set]
        if self.webhook_retry_schedule is not None and node:
            raise ValueError(
                f"WEBHOOK_RETRY_SCHEDULE and {' and '.join(node)} are both set: the schedule, or "
                "the Node service's attempts and doubling delay, not both; unset one"
            )
        return self

    @model_validator(mode="after")
    def _schedule_fits_the_age_bound(self) -> Settings:
        # WEBHOOK_RETRY_SCHEDULE is held to the same bound by RetrySchedule's total (above)
        schedule = longest_retry_schedule(self.webhook_max_attempts, self.webhook_retry_delay)
        if schedule > SCHEDULE_BOUND_SECONDS:
            raise ValueError(
                f"WEBHOOK_MAX_ATTEMPTS={self.webhook_max_attempts} with WEBHOOK_RETRY_DELAY="
                f"{self.webhook_retry_delay} ms waits up to {schedule / 86_400:.1f} days between "
                f"attempts, over the {SCHEDULE_BOUND_SECONDS // 86_400}-day bound (a delivery is "
                "dead-lettered 35 days after it was accepted): lower either"
            )
        return self

    def require(self, *names: str) -> None:
        """Fail fast when a function starts without a variable it needs."""
        missing = [name.upper() for name in names if not getattr(self, name)]
        if missing:
            raise ConfigError(f"Missing required configuration: {', '.join(missing)}")

    @property
    def admin_key_hashes(self) -> tuple[str, ...]:
        """The admin key hashes from the environment (ADMIN_API_KEY_HASH, else ADMIN_API_KEY)."""
        if self.admin_api_key_hash:
            return parse_key_hashes(self.admin_api_key_hash)
        if self.admin_api_key:
            return (hashlib.sha256(self.admin_api_key.get_secret_value().encode("utf-8")).hexdigest(),)
        return ()

    @property
    def timeout_seconds(self) -> float:
        return self.webhook_timeout / 1000


def _env_name(settings_field: str) -> str:
    field = Settings.model_fields.get(settings_field)
    alias = field.validation_alias if field else None
    return alias if isinstance(alias, str) else settings_field.upper()


NOT_ECHOED = {"ADMIN_API_KEY", "ADMIN_API_KEY_HASH"}


def environment_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Each setting's variable from ``environ``, by field name: the variable is the field's
    name in capitals (its alias for AWS_DEFAULT_REGION), matched regardless of case as the
    pydantic-settings version of this module did. Values stay text: pydantic's lax mode turns
    "5" into 5 and "true" into True, and the validators above read the rest."""
    by_lower_name = {name.lower(): value for name, value in environ.items()}
    values = {}
    for field in Settings.model_fields:
        value = by_lower_name.get(_env_name(field).lower())
        if value is not None:
            values[field] = value
    return values


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the environment (``overrides`` win, for tests and the CLI)."""
    try:
        return Settings(**{**environment_values(os.environ), **overrides})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = _env_name(str(error["loc"][0])) if error["loc"] else "configuration"
            value = error.get("input")
            shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
            if name in NOT_ECHOED:  # a key pasted where its hash belongs must not reach a log
                shown = ""
            problems.append(f"{name}: {error['msg']}{shown}")
        raise ConfigError("Invalid configuration: " + "; ".join(problems)) from None
