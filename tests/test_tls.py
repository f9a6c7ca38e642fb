"""TLS verification is always on: a server with an untrusted certificate is refused."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from etl.errors import FatalSourceError
from etl.http import build_session
from etl.settings import load_settings
from etl.sources import SOURCES


class _Listing(BaseHTTPRequestHandler):
    """Answers every GET with an empty Pingram listing, and counts the requests."""

    requests_seen = 0

    def do_GET(self) -> None:
        """An empty listing."""
        type(self).requests_seen += 1
        body = b'{"numbers": [], "sharedNumber": "+15550001111"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def untrusted_https_url() -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no public CA signed."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listing)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_untrusted_certificate_is_refused_before_any_request(untrusted_https_url: str) -> None:
    """The extractor fails with a fatal error naming TLS; the server never sees a request."""
    _Listing.requests_seen = 0
    settings = load_settings(
        PINGRAM_API_KEY="pingram_sk_tls_test", PINGRAM_BASE_URL=untrusted_https_url
    )
    extractor = SOURCES["pingram"].extractor(settings, build_session(settings))
    with pytest.raises(FatalSourceError) as caught, extractor.open_listing("default"):
        pass
    assert "certificate" in str(caught.value).lower()
    assert "pingram_sk_tls_test" not in str(caught.value)
    assert _Listing.requests_seen == 0
