"""Pingram route: ``GET /numbers/list`` with a bearer API key, and Pingram's error bodies.

A missing ``Authorization`` header gets 401 with no body (Pingram documents 401 without a
schema); a wrong key gets 401 with the standard error body. Errors forced by a fault use
the standard body ``{"trackingId", "error": {"code", "message", "fix"?, "provider"?,
"providerCode"?}}``, except 401, which has no body.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import replace

from etl.simulator.bad import PINGRAM_INVALID, bad_records
from etl.simulator.credentials import SIM_PINGRAM_API_KEY
from etl.simulator.data import Listing
from etl.simulator.faults import Fault
from etl.simulator.wire import Reply, Request, json_reply

# status -> (code, message, fix, provider, providerCode); None leaves the field out.
_ERRORS: dict[int, tuple[str, str, str | None, str | None, str | None]] = {
    400: ("validation_error", "Invalid request parameters", "Check the query string.", None, None),
    401: ("unauthorized", "Invalid API key", "Use a key from Settings → API keys.", None, None),
    402: (
        "usage_limit_exceeded",
        "Usage limit exceeded for the current billing period",
        "Upgrade your plan or wait until the next billing period.",
        None,
        None,
    ),
    403: ("forbidden", "This API key may not list numbers", "Use a key with numbers:read.", None,
          None),
    404: ("not_found", "Not found", None, None, None),
    429: ("rate_limited", "Too many requests", "Retry after the Retry-After delay.", None, None),
    500: ("internal_error", "Internal server error", None, None, None),
    502: (
        "provider_error",
        "The upstream telephony provider returned an error",
        "Retry later; contact support with the tracking id if it persists.",
        "telnyx",
        "10009",
    ),
    503: ("service_unavailable", "Service temporarily unavailable", "Retry later.", None, None),
    504: ("gateway_timeout", "The upstream provider timed out", "Retry later.", None, None),
}  # fmt: skip


def pingram_error(status: int) -> Reply:
    """Pingram's standard error body for ``status``."""
    code, message, fix, provider, provider_code = _ERRORS.get(
        status, ("error", f"HTTP {status}", None, None, None)
    )
    error = {"code": code, "message": message}
    for name, value in (("fix", fix), ("provider", provider), ("providerCode", provider_code)):
        if value is not None:
            error[name] = value
    return json_reply(status, {"trackingId": f"trk_{uuid.uuid4().hex[:24]}", "error": error})


def pingram_fault_reply(status: int) -> Reply:
    """The answer to a status forced by a fault: the error body, or no body for 401."""
    return Reply(401) if status == 401 else pingram_error(status)


def numbers_list(req: Request, listing: Listing, fault: Fault | None) -> Reply:
    """``GET /numbers/list``: ``{"numbers": [...], "sharedNumber": ...}``, streamed."""
    auth = req.headers.get("Authorization")
    if not auth:
        return Reply(401)
    scheme, _, key = auth.strip().partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        key.strip().encode("utf-8"), SIM_PINGRAM_API_KEY.encode("utf-8")
    )
    if not ok:
        return pingram_error(401)
    if fault is not None:
        if fault.empty_listing:
            listing = replace(listing, count=0)
        if fault.bad_records:
            first = listing.batch(0, 1)[0] if listing.count else None
            listing = replace(listing, extra=bad_records(first, PINGRAM_INVALID))
        if fault.wrong_shape:  # "numbers" an object instead of an array
            listing = replace(
                listing, prefix='{"numbers":{"items":[', suffix="]}" + listing.suffix[1:]
            )
    return Reply(200, listing=listing)
