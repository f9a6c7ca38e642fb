"""The HTTP side: one ThreadingHTTPServer on loopback serving both providers (HTTP/1.1).

Listings are sent with ``Transfer-Encoding: chunked``, rendered batch by batch, so a
listing of any size costs the same memory. Small answers carry a Content-Length.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from etl.simulator.data import Listing
from etl.simulator.faults import Fault
from etl.simulator.pingram import numbers_list, pingram_fault_reply
from etl.simulator.sinch import sinch_fault_reply
from etl.simulator.wire import Reply, Request, json_reply

if TYPE_CHECKING:
    from etl.simulator.simulator import Simulator

BATCH = 512  # records rendered and written per chunk (~100 KiB)
MALFORMED = b"<!-- upstream error -->"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/v1/users/email/(?P<email>[^/]+)/authentication"), "sinch.login"),
    ("POST", re.compile(r"/v1/instance"), "sinch.instance"),
    ("GET", re.compile(r"/v1/organisations"), "sinch.organisations"),
    ("GET", re.compile(r"/v1/organisations/id/(?P<orgId>[^/]+)/numbers"), "sinch.numbers"),
    ("GET", re.compile(r"/numbers/list"), "pingram.list"),
)


class SimulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its `Simulator`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.simulator = simulator
        super().__init__(address, SimulatorHandler)


class _AbortedError(Exception):
    """The connection was dropped on purpose (truncate) or by the client."""


class SimulatorHandler(BaseHTTPRequestHandler):
    """Routes a request to its provider, applies the endpoint's next fault, writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "numbers-etl-simulator"
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after this
    server: SimulatorHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the simulator's own request log is `Simulator.requests`."""

    def version_string(self) -> str:
        """The Server header."""
        return self.server_version

    def do_GET(self) -> None:
        """Answer a GET."""
        self._answer()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._answer()

    def _answer(self) -> None:
        sim = self.server.simulator
        path = urlsplit(self.path).path
        try:
            try:
                body = self._read_body()
            except ValueError:
                self.send_error(400, "Bad request body framing")
                return
            endpoint, params, allowed = _route(self.command, path)
            request = Request(self.command, path, self.headers, body, params)
            fault = sim.faults.take(endpoint) if allowed else None
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            reply = self._reply(endpoint, request, fault, allowed)
            self._write(endpoint, path, reply, fault)
        except (_AbortedError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _reply(self, endpoint: str, req: Request, fault: Fault | None, allowed: bool) -> Reply:
        sim = self.server.simulator
        if endpoint == "unknown":
            return json_reply(404, {"message": f"No route for {req.path}"})
        if not allowed:
            return Reply(405, b"", headers={"Allow": "GET" if req.method == "POST" else "POST"})
        if fault is not None and fault.status != 200:
            if endpoint.startswith("pingram."):
                return pingram_fault_reply(fault.status)
            return sinch_fault_reply(fault.status)
        if endpoint == "pingram.list":
            return numbers_list(req, sim.pingram_listing(), fault)
        if endpoint == "sinch.numbers":
            return sim.sinch.numbers(req, sim.sinch_listing(), fault)
        if endpoint == "sinch.organisations":
            return sim.sinch.organisations(req, fault)
        if endpoint == "sinch.instance":
            return sim.sinch.create_instance(req, fault)
        return sim.sinch.login(req, fault)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, endpoint: str, path: str, reply: Reply, fault: Fault | None) -> None:
        self.server.simulator.record(endpoint, self.command, path, reply.status)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if fault is not None and fault.retry_after is not None:
            self.send_header("Retry-After", fault.retry_after)
        elif fault is not None and fault.retry_after_in is not None:
            self.send_header(
                "Retry-After", formatdate(time.time() + fault.retry_after_in, usegmt=True)
            )
        body_fault = fault if reply.status == 200 else None
        if reply.listing is not None:
            self._start_chunked()
            self._write_listing(reply.listing, body_fault)
        elif reply.body and body_fault is not None and _has_mid_action(body_fault):
            self._start_chunked()
            self._write_small(reply.body, body_fault)
        else:
            body = reply.body or b""
            if body:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _start_chunked(self) -> None:
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%X\r\n%b\r\n" % (len(data), data))

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _write_listing(self, listing: Listing, fault: Fault | None) -> None:
        total = listing.total
        mid = total // 2 if fault is not None and _has_mid_action(fault) else total
        self._chunk(listing.prefix.encode("utf-8"))
        self._write_records(listing, 0, mid)
        if fault is not None and _has_mid_action(fault):
            if fault.truncate:  # half of what comes next, then hang up
                rest = listing.suffix
                if mid < total:
                    rest = ("," if mid else "") + listing.batch(mid, mid + 1)[0]
                self._chunk(rest[: len(rest) // 2].encode("utf-8"))
                self._abort()
            if fault.malformed:
                self._chunk(MALFORMED)
            time.sleep(fault.body_delay)
            self._write_records(listing, mid, total)
        self._chunk(listing.suffix.encode("utf-8"))
        self._end_chunks()

    def _write_records(self, listing: Listing, start: int, stop: int) -> None:
        for at in range(start, stop, BATCH):
            text = ",".join(listing.batch(at, min(at + BATCH, stop)))
            self._chunk((("," if at else "") + text).encode("utf-8"))

    def _write_small(self, body: bytes, fault: Fault) -> None:
        if fault.malformed:
            body = body[:-1] + MALFORMED + body[-1:]
        half = len(body) // 2
        self._chunk(body[:half])
        if fault.truncate:
            self._abort()
        time.sleep(fault.body_delay)
        self._chunk(body[half:])
        self._end_chunks()

    def _abort(self) -> None:
        """Drop the connection in the middle of the body (no terminating chunk)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _AbortedError


def _has_mid_action(fault: Fault) -> bool:
    return fault.truncate or fault.malformed or fault.body_delay > 0


def _route(method: str, path: str) -> tuple[str, dict[str, str], bool]:
    """(endpoint name, path parameters, method allowed); "unknown" when nothing matches."""
    for route_method, pattern, endpoint in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            return endpoint, params, method == route_method
    return "unknown", {}, True
