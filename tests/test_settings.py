"""Settings from the environment and .env (SPEC §3): validation names the variable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from etl.db.load import BULK_LOAD_MIN_ROWS
from etl.errors import ConfigError
from etl.pipeline import selected_sources
from etl.settings import load_settings, parse_duration

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="  # base64 of "secret-secret-secret"


def test_defaults_match_the_spec() -> None:
    """With nothing set, every default is the one SPEC §3 lists."""
    settings = load_settings()
    assert settings.schedule == "0 * * * *"
    assert (settings.http_connect_timeout, settings.http_read_timeout) == (10.0, 60.0)
    assert settings.http_max_attempts == 5
    assert settings.log_format == "text"
    assert settings.log_level == "INFO"
    assert settings.max_removal_fraction == Decimal("0.5")
    assert settings.bulk_load_min_rows == BULK_LOAD_MIN_ROWS == 50_000
    assert settings.sinch_base_url == "https://portalapi.sinch.com"
    assert settings.pingram_url == "https://api.pingram.io"
    assert settings.pingram_account == "default"
    assert settings.enabled_sources == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"SINCH_INSTANCE_ID": "i", "SINCH_INSTANCE_SECRET": "not base64!"},
            "SINCH_INSTANCE_SECRET is not valid base64 (paste the secret as Sinch issued it)",
            id="secret-not-base64",
        ),
        pytest.param(
            {"SINCH_INSTANCE_ID": "i"},
            "SINCH_INSTANCE_SECRET is required when SINCH_INSTANCE_ID is set",
            id="instance-id-without-secret",
        ),
        pytest.param(
            {"SINCH_PASSWORD": "pw"},
            "SINCH_EMAIL is required when SINCH_PASSWORD is set",
            id="password-without-email",
        ),
        pytest.param(
            {"SINCH_ORGANISATION_ID": "8888123"},
            "SINCH_ORGANISATION_ID is set but no Sinch credentials are: set SINCH_INSTANCE_ID "
            "and SINCH_INSTANCE_SECRET, or SINCH_EMAIL and SINCH_PASSWORD",
            id="organisation-without-credentials",
        ),
        pytest.param(
            {"PINGRAM_API_KEY": "k", "PINGRAM_BASE_URL": "http://api.example.com"},
            "PINGRAM_BASE_URL uses plain http:// for a non-loopback host; use https://",
            id="plain-http-remote",
        ),
        pytest.param(
            {"NUMBERS_ETL_HTTP_READ_TIMEOUT": "-1"},
            "NUMBERS_ETL_HTTP_READ_TIMEOUT Input should be greater than 0",
            id="negative-timeout",
        ),
        pytest.param(
            {"NUMBERS_ETL_BULK_LOAD_MIN_ROWS": "-1"},
            "NUMBERS_ETL_BULK_LOAD_MIN_ROWS Input should be greater than or equal to 0",
            id="negative-bulk-threshold",
        ),
        pytest.param(
            {"NUMBERS_ETL_SCHEDULE": "every hour"},
            "NUMBERS_ETL_SCHEDULE must be a 5-field cron expression or '@every DURATION'",
            id="bad-schedule",
        ),
        pytest.param(
            {"NUMBERS_ETL_DATABASE_URL": "mysql://x"},
            "NUMBERS_ETL_DATABASE_URL must start with postgresql:// or postgresql+psycopg://",
            id="not-postgres",
        ),
    ],
)
def test_bad_settings_give_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    """Each invalid configuration raises ConfigError with exactly this message."""
    with pytest.raises(ConfigError) as info:
        load_settings(**env)
    assert str(info.value) == message
    assert info.value.exit_code == 2


def test_no_source_configured_is_a_config_error() -> None:
    """sync with no credentials at all is refused with a message naming the variables."""
    with pytest.raises(ConfigError, match="no source configured: set SINCH_INSTANCE_ID"):
        selected_sources(load_settings(), None)


def test_sources_are_enabled_by_their_credentials() -> None:
    """A source is enabled exactly when its credentials are set."""
    settings = load_settings(
        PINGRAM_API_KEY="pingram_sk_x", SINCH_EMAIL="a@b.c", SINCH_PASSWORD="pw"
    )
    assert settings.enabled_sources == ["sinch", "pingram"]
    assert [s.name for s in selected_sources(settings, ["pingram"])] == ["pingram"]


def test_secrets_never_show_in_repr() -> None:
    """Secret settings print as asterisks, so a logged Settings leaks nothing."""
    settings = load_settings(
        SINCH_INSTANCE_ID="inst",
        SINCH_INSTANCE_SECRET=SECRET,
        PINGRAM_API_KEY="pingram_sk_zz9",
        NUMBERS_ETL_DATABASE_URL="postgresql://u:hunter22@db/x",
    )
    text = repr(settings) + str(settings)
    for secret in (SECRET, "pingram_sk_zz9", "hunter22"):
        assert secret not in text
    assert sorted(settings.secrets()) == sorted([SECRET, "pingram_sk_zz9", "hunter22"])


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    """A .env file in the working directory configures like the environment does."""
    (tmp_path / ".env").write_text("PINGRAM_API_KEY=pingram_sk_env\nPINGRAM_REGION=eu\n")
    settings = load_settings()
    assert settings.pingram_enabled
    assert settings.pingram_url == "https://api.eu.pingram.io"


def test_loopback_http_is_allowed() -> None:
    """Plain http:// is accepted for loopback hosts (the simulator)."""
    settings = load_settings(PINGRAM_API_KEY="k", PINGRAM_BASE_URL="http://127.0.0.1:8080/")
    assert settings.pingram_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("2d", 172800.0), ("500ms", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations of @every and --max-age parse to seconds."""
    assert parse_duration(text) == seconds
