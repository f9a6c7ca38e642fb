"""Sinch instance-signed requests (SPEC §4.1): the pure signer."""

from __future__ import annotations

import base64
import hashlib
import hmac


def content_md5(body: bytes | None) -> str:
    """Base64 of the MD5 of the body, or "" when there is no body.

    >>> content_md5(b'{"message":"Hello world"}')
    'jANzQ+rgAHyf1MWQFSwvYw=='
    """
    if not body:
        return ""
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324


def sign_sinch_request(
    *,
    verb: str,
    body: bytes | None,
    content_type: str | None,
    timestamp: str,
    path: str,
    secret: str,
) -> str:
    """The Sinch request signature: Base64(HMAC-SHA256(Base64Decode(secret), StringToSign)).

    StringToSign = VERB \\n ContentMD5 \\n ContentType \\n "x-timestamp:" timestamp \\n path

    >>> sign_sinch_request(verb="POST", body=b'{"message":"Hello world"}',
    ...     content_type="application/json", timestamp="2014-06-04T13:41:58Z",
    ...     path="/v1/sms/+46700000000", secret="JViE5vDor0Sw3WllZka15Q==")
    'qDXMwzfaxCRS849c/2R0hg0nphgdHciTo7OdM6MsdnM='
    """
    string_to_sign = "\n".join(
        [verb.upper(), content_md5(body), content_type or "", f"x-timestamp:{timestamp}", path]
    )
    key = base64.b64decode(secret)
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
