"""Typed settings from the environment and a `.env` file (SPEC §3).

Every problem is a `ConfigError` whose one-line message names the variable.
Secrets are `SecretStr`: their repr and str are `**********`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from etl.errors import ConfigError

PINGRAM_REGIONS = {
    "us": "https://api.pingram.io",
    "eu": "https://api.eu.pingram.io",
    "ca": "https://api.ca.pingram.io",
}

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a duration like `30s`, `15m`, `1h`, `2d`.

    >>> parse_duration("15m")
    900.0
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration like 30s, 15m, 1h or 2d: {text!r}")
    return float(int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(name: str, url: str) -> str:
    """The URL without a trailing slash; `http://` only for loopback hosts."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"{name} uses plain http:// for a non-loopback host; use https://")
    return url.rstrip("/")


class Settings(BaseSettings):
    """Everything numbers-etl reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # Where the data goes
    database_url: SecretStr | None = Field(None, alias="NUMBERS_ETL_DATABASE_URL")
    home: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("numbers-etl")),
        alias="NUMBERS_ETL_HOME",
    )
    schedule: str = Field("0 * * * *", alias="NUMBERS_ETL_SCHEDULE")
    http_connect_timeout: float = Field(10.0, gt=0, alias="NUMBERS_ETL_HTTP_CONNECT_TIMEOUT")
    http_read_timeout: float = Field(60.0, gt=0, alias="NUMBERS_ETL_HTTP_READ_TIMEOUT")
    http_max_attempts: int = Field(5, ge=1, le=20, alias="NUMBERS_ETL_HTTP_MAX_ATTEMPTS")
    log_format: Literal["text", "json"] = Field("text", alias="NUMBERS_ETL_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="NUMBERS_ETL_LOG_LEVEL"
    )
    archive_dir: Path | None = Field(None, alias="NUMBERS_ETL_ARCHIVE_DIR")
    max_removal_fraction: Decimal = Field(
        Decimal("0.5"), ge=0, le=1, alias="NUMBERS_ETL_MAX_REMOVAL_FRACTION"
    )
    bulk_load_min_rows: int = Field(50_000, ge=0, alias="NUMBERS_ETL_BULK_LOAD_MIN_ROWS")

    # Sinch
    sinch_base_url: str = Field("https://portalapi.sinch.com", alias="SINCH_BASE_URL")
    sinch_api_url: str = Field("https://api.sinch.com", alias="SINCH_API_URL")
    sinch_login_url: str = Field("https://userapi.sinch.com", alias="SINCH_LOGIN_URL")
    sinch_instance_id: str | None = Field(None, alias="SINCH_INSTANCE_ID")
    sinch_instance_secret: SecretStr | None = Field(None, alias="SINCH_INSTANCE_SECRET")
    sinch_email: str | None = Field(None, alias="SINCH_EMAIL")
    sinch_password: SecretStr | None = Field(None, alias="SINCH_PASSWORD")
    sinch_organisation_id: str | None = Field(None, alias="SINCH_ORGANISATION_ID")

    # Pingram
    pingram_api_key: SecretStr | None = Field(None, alias="PINGRAM_API_KEY")
    pingram_base_url: str | None = Field(None, alias="PINGRAM_BASE_URL")
    pingram_region: Literal["us", "eu", "ca"] = Field("us", alias="PINGRAM_REGION")
    pingram_account: str = Field("default", min_length=1, alias="PINGRAM_ACCOUNT")

    @field_validator(
        "sinch_instance_id",
        "sinch_email",
        "sinch_organisation_id",
        "pingram_base_url",
        "archive_dir",
        "database_url",
        "sinch_instance_secret",
        "sinch_password",
        "pingram_api_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", "log_format", "pingram_region", mode="before")
    @classmethod
    def _fold_case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return (
            value.upper()
            if value.lower() in {"debug", "info", "warning", "error"}
            else (value.lower())
        )

    @field_validator("sinch_instance_secret")
    @classmethod
    def _secret_is_base64(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                base64.b64decode(value.get_secret_value(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "is not valid base64 (paste the secret as Sinch issued it)"
                ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgresql+psycopg://", "postgres://")
        ):
            raise ValueError("must start with postgresql:// or postgresql+psycopg://")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_is_valid(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("@every"):
            parse_duration(value.removeprefix("@every"))
        elif len(value.split()) != 5:
            raise ValueError("must be a 5-field cron expression or '@every DURATION'")
        return value

    @model_validator(mode="after")
    def _credentials_come_in_pairs(self) -> Settings:
        for name, url in (
            ("SINCH_BASE_URL", self.sinch_base_url),
            ("SINCH_API_URL", self.sinch_api_url),
            ("SINCH_LOGIN_URL", self.sinch_login_url),
            ("PINGRAM_BASE_URL", self.pingram_base_url),
        ):
            if url is not None:
                check_base_url(name, url)
        pairs = (
            (
                "SINCH_INSTANCE_ID",
                self.sinch_instance_id,
                "SINCH_INSTANCE_SECRET",
                self.sinch_instance_secret,
            ),
            ("SINCH_EMAIL", self.sinch_email, "SINCH_PASSWORD", self.sinch_password),
        )
        for first, first_value, second, second_value in pairs:
            if (first_value is None) != (second_value is None):
                missing = second if first_value is not None else first
                given = first if first_value is not None else second
                raise ValueError(f"{missing} is required when {given} is set")
        if self.sinch_organisation_id is not None and not self.sinch_enabled:
            raise ValueError(
                "SINCH_ORGANISATION_ID is set but no Sinch credentials are: set "
                "SINCH_INSTANCE_ID and SINCH_INSTANCE_SECRET, or SINCH_EMAIL and SINCH_PASSWORD"
            )
        return self

    # ---- derived values -------------------------------------------------

    @property
    def sinch_enabled(self) -> bool:
        """Sinch is configured with fixed instance credentials or a log-in."""
        return self.sinch_instance_id is not None or self.sinch_email is not None

    @property
    def pingram_enabled(self) -> bool:
        """Pingram is configured with an API key."""
        return self.pingram_api_key is not None

    @property
    def pingram_url(self) -> str:
        """The Pingram API base: PINGRAM_BASE_URL, else the region's URL."""
        if self.pingram_base_url is not None:
            return self.pingram_base_url.rstrip("/")
        return PINGRAM_REGIONS[self.pingram_region]

    @property
    def enabled_sources(self) -> list[str]:
        """The source ids whose credentials are set, in registry order."""
        return [
            name
            for name, enabled in (("sinch", self.sinch_enabled), ("pingram", self.pingram_enabled))
            if enabled
        ]

    def secrets(self) -> list[str]:
        """Every secret value set, for redaction of logs and messages."""
        values = [self.sinch_instance_secret, self.sinch_password, self.pingram_api_key]
        found = [v.get_secret_value() for v in values if v is not None]
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            if password:
                found.append(password)
        return found


def _field_env_name(loc: tuple[int | str, ...]) -> str:
    for part in loc:
        if isinstance(part, str):
            field = Settings.model_fields.get(part)
            if field is not None and field.alias:
                return field.alias
            return part
    return "configuration"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`; any problem is a one-line ConfigError.

    Keyword overrides use the environment names, e.g. `load_settings(PINGRAM_API_KEY="...")`.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = tuple(error.get("loc", ()))
        if loc:
            raise ConfigError(f"{_field_env_name(loc)} {message}") from None
        raise ConfigError(message) from None
