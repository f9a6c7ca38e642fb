"""Sinch routes: log-in, instance creation, organisations and the numbers listing.

Instance-signed requests are checked like Sinch does (SPEC §4.1), in this order:
``Authorization`` missing or unparsable → 401 40100; a scheme other than ``Instance`` →
403 40301; ``x-timestamp`` missing, not ISO 8601 or more than 15 minutes off → 401 40101;
unknown or expired instance → 401 40100; signature mismatch → 401 40102; then, for the
listing, an organisation other than ours → 403 40300.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from etl.extract.sinch_auth import sign_sinch_request
from etl.simulator.bad import SINCH_INVALID, bad_records
from etl.simulator.credentials import (
    SIM_SINCH_EMAIL,
    SIM_SINCH_INSTANCE_ID,
    SIM_SINCH_INSTANCE_SECRET,
    SIM_SINCH_ORGANISATION_ID,
    SIM_SINCH_ORGANISATION_NAME,
    SIM_SINCH_PASSWORD,
    SINCH_APPLICATION_KEY,
)
from etl.simulator.data import Listing
from etl.simulator.faults import Fault, Faults
from etl.simulator.wire import Reply, Request, json_reply

DEFAULT_INSTANCE_TTL = 3600
CLOCK_SKEW = timedelta(minutes=15)

_ERROR_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def sinch_error(status: int, code: int, message: str) -> Reply:
    """A Sinch error answer: ``{"errorCode": code, "message": message}``."""
    return json_reply(status, {"errorCode": code, "message": message})


def sinch_fault_reply(status: int) -> Reply:
    """The documented error body for a status forced by a fault (errorCode = status * 100)."""
    message = _ERROR_MESSAGES.get(status) or _phrase(status)
    return sinch_error(status, status * 100, message)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class SinchState:
    """Log-in tokens and instances handed out so far, with their expiry."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self._instances: dict[str, tuple[str, float]] = {}  # id -> (secret, monotonic expiry)

    def forget(self) -> None:
        """Forget every token and created instance (the fixed instance stays valid)."""
        with self._lock:
            self._tokens.clear()
            self._instances.clear()

    def login(self, req: Request, fault: Fault | None) -> Reply:
        """``POST /v1/users/email/{email}/authentication`` → ``{"authorization", "user"}``."""
        if req.headers.get("Authorization", "").strip() != f"Application {SINCH_APPLICATION_KEY}":
            return sinch_error(
                401, 40100, "The 'application' authorization scheme with the key is required"
            )
        body = _json_object(req.body)
        password = body.get("password") if body else None
        email = req.params["email"]
        if email.lower() != SIM_SINCH_EMAIL or not _same(password, SIM_SINCH_PASSWORD):
            return sinch_error(401, 40100, "Invalid email or password")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        user = {
            "id": "9b3c0e2a-5d41-4f0e-a7a9-3f1d2c4b5e6f",
            "email": SIM_SINCH_EMAIL,
            "name": "Simulated Operator",
            "organisationId": int(SIM_SINCH_ORGANISATION_ID),
        }
        if fault is not None and fault.wrong_shape:
            return json_reply(200, {"token": token, "user": user})
        return json_reply(200, {"authorization": token, "user": user})

    def create_instance(self, req: Request, fault: Fault | None) -> Reply:
        """``POST /v1/instance`` with a ``User`` token → ``{"id", "secret", "expiresIn"}``."""
        scheme, _, token = req.headers.get("Authorization", "").strip().partition(" ")
        with self._lock:
            known = token in self._tokens
        if scheme.lower() != "user" or not known:
            return sinch_error(401, 40100, "A valid 'User' authorization is required")
        body = _json_object(req.body)
        if body is None or body.get("authorization") != token:
            return sinch_error(400, 40000, "The body must carry the user's authorization")
        ttl = self._faults.instance_ttl or DEFAULT_INSTANCE_TTL
        instance_id = str(uuid.uuid4())
        secret = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        with self._lock:
            self._instances[instance_id] = (secret, time.monotonic() + ttl)
        if fault is not None and fault.wrong_shape:
            return json_reply(200, {"instanceId": instance_id, "key": secret})
        return json_reply(200, {"id": instance_id, "secret": secret, "expiresIn": ttl})

    def check_signed(self, req: Request) -> Reply | None:
        """None when ``req`` is a correctly instance-signed request, else the error answer."""
        auth = req.headers.get("Authorization", "").strip()
        scheme, _, credentials = auth.partition(" ")
        if not scheme:
            return sinch_error(401, 40100, "Missing Authorization header")
        if scheme.lower() != "instance":
            return sinch_error(403, 40301, "The authorization scheme 'instance' is required.")
        instance_id, colon, signature = credentials.strip().partition(":")
        if not colon or not instance_id or not signature:
            return sinch_error(
                401, 40100, "Invalid Authorization header: Instance {id}:{signature}"
            )
        timestamp = req.headers.get("x-timestamp", "")
        if not _timestamp_is_fresh(timestamp):
            return sinch_error(
                401, 40101, "Invalid x-timestamp: ISO 8601, within 15 minutes of the server time"
            )
        secret = self._instance_secret(instance_id)
        if secret is None:
            return sinch_error(401, 40100, "Unknown or expired instance")
        expected = sign_sinch_request(
            verb=req.method,
            body=req.body or None,
            content_type=req.headers.get("Content-Type"),
            timestamp=timestamp,
            path=req.path,
            secret=secret,
        )
        if not _same(signature, expected):
            return sinch_error(401, 40102, "Invalid signature")
        return None

    def _instance_secret(self, instance_id: str) -> str | None:
        if instance_id == SIM_SINCH_INSTANCE_ID:
            return SIM_SINCH_INSTANCE_SECRET
        with self._lock:
            found = self._instances.get(instance_id)
            if found is None:
                return None
            if time.monotonic() >= found[1]:
                del self._instances[instance_id]
                return None
            return found[0]

    def organisations(self, req: Request, fault: Fault | None) -> Reply:
        """``GET /v1/organisations``: the caller's organisation, in the configured shape."""
        refused = self.check_signed(req)
        if refused is not None:
            return refused
        org_id: int | str = int(SIM_SINCH_ORGANISATION_ID)
        shape = self._faults.organisations_shape
        if shape == "string-id":
            org_id = SIM_SINCH_ORGANISATION_ID
        org = {"id": org_id, "name": SIM_SINCH_ORGANISATION_NAME, "type": "customer"}
        if fault is not None and fault.wrong_shape:
            return json_reply(200, SIM_SINCH_ORGANISATION_ID)
        if fault is not None and fault.empty_listing:
            return json_reply(200, [])
        return json_reply(200, [org] if shape == "array" else org)

    def numbers(self, req: Request, listing: Listing, fault: Fault | None) -> Reply:
        """``GET /v1/organisations/id/{orgId}/numbers``: the rented numbers, streamed."""
        refused = self.check_signed(req)
        if refused is not None:
            return refused
        org_id = req.params["orgId"]
        if org_id != SIM_SINCH_ORGANISATION_ID:
            return sinch_error(
                403, 40300, f"The current user is not the owner of the organisation: {org_id}"
            )
        if fault is not None:
            if fault.empty_listing:
                listing = replace(listing, count=0)
            if fault.bad_records:
                first = listing.batch(0, 1)[0] if listing.count else None
                listing = replace(listing, extra=bad_records(first, SINCH_INVALID))
            if fault.wrong_shape:
                listing = replace(listing, prefix='{"numbers":[', suffix="]}")
        return Reply(200, listing=listing)


def _same(given: object, expected: str) -> bool:
    """Constant-time comparison of a received value with the expected string."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _timestamp_is_fresh(value: str) -> bool:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return abs(datetime.now(UTC) - when) <= CLOCK_SKEW
