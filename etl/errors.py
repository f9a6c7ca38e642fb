"""The exception tree of numbers-etl, by what the operator does next.

    NumbersEtlError                      exit 1 unless a subclass says otherwise
    ├── ConfigError                      fix the settings or the command line (exit 2)
    ├── SyncLocked                       another sync holds the lock; try later
    ├── ArchiveError                     an archived response cannot be read
    └── SourceError(source, account)     one source failed this run; others go on
        ├── RetriableSourceError         transient: network, timeouts, 5xx, 429 after retries
        ├── FatalSourceError             will fail again until someone acts
        │   ├── ProviderError            a documented provider error body (code, tracking id, fix)
        │   │   └── AuthError            credentials refused (401/403, Sinch 401xx/403xx)
        │   └── MalformedResponse        body incomplete, not JSON, or not the documented shape
        └── MassRemovalRefused           listing would remove too many numbers (§5.6)

A record that cannot be normalized is a `Rejection` value (etl.transform), never
an exception. Messages are written for an operator and never contain secrets:
`redact` masks them in every message, log line and printed error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"
_AUTH_VALUE = re.compile(r"\b(Bearer|Instance|User|Application)\s+[A-Za-z0-9._~+/=:-]{8,}")


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret, and anything that looks like a credential, masked.

    >>> redact("key pingram_sk_abc123 refused", ["pingram_sk_abc123"])
    'key *** refused'
    >>> redact("sent Authorization: Bearer abcdefghijkl", [])
    'sent Authorization: Bearer ***'
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


class NumbersEtlError(Exception):
    """Base of every error numbers-etl raises on purpose."""

    exit_code: int = 1


class ConfigError(NumbersEtlError):
    """A setting or a command-line argument is wrong; the message names it."""

    exit_code = 2


class SyncLocked(NumbersEtlError):
    """Another sync holds the advisory lock."""


class ArchiveError(NumbersEtlError):
    """An archived response file cannot be read or parsed."""


class SourceError(NumbersEtlError):
    """One (source, account) failed for this run."""

    def __init__(self, message: str, *, source: str, account_id: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.account_id = account_id

    def __str__(self) -> str:
        where = self.source if self.account_id is None else f"{self.source}/{self.account_id}"
        return f"{where}: {self.args[0]}"


class RetriableSourceError(SourceError):
    """A transient failure (network, timeout, 5xx, 429) that outlived the retries."""


class FatalSourceError(SourceError):
    """A failure that repeats until someone acts on it."""


class ProviderError(FatalSourceError):
    """A documented provider error body, with what the provider said to do."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        account_id: str | None = None,
        status: int | None = None,
        code: str | None = None,
        tracking_id: str | None = None,
        fix: str | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, source=source, account_id=account_id)
        self.status = status
        self.code = code
        self.tracking_id = tracking_id
        self.fix = fix
        self.provider = provider


class AuthError(ProviderError):
    """The provider refused the credentials (HTTP 401/403)."""


class MalformedResponse(FatalSourceError):
    """The body was incomplete, not JSON, or not of the documented shape."""


class DigestMismatch(RetriableSourceError):
    """Elements taken as unchanged by half of their digest are not (see etl.transform.digest)."""


class MassRemovalRefused(SourceError):
    """The listing would mark too many of an account's numbers removed."""
