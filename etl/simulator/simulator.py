"""`Simulator`: the running server, its dataset, fault knobs and request log; `serve()`."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from types import FrameType

from etl.simulator.credentials import (
    SIM_PINGRAM_API_KEY,
    SIM_SINCH_EMAIL,
    SIM_SINCH_INSTANCE_ID,
    SIM_SINCH_INSTANCE_SECRET,
    SIM_SINCH_ORGANISATION_ID,
    SIM_SINCH_PASSWORD,
)
from etl.simulator.data import MAX_NUMBERS, Listing, pingram_listing, sinch_listing, today_anchor
from etl.simulator.faults import Faults
from etl.simulator.server import SimulatorHTTPServer
from etl.simulator.sinch import SinchState

REQUEST_LOG_LIMIT = 100_000  # past this, the oldest half of the request log is dropped


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered."""

    endpoint: str  # e.g. "sinch.numbers"; "unknown" for paths it does not serve
    method: str
    path: str  # without the query string
    status: int  # the status answered
    time: float  # time.time() when the status line was sent


@dataclass(frozen=True)
class Dataset:
    """What the listings contain: ``numbers`` per provider, from ``seed``, at ``revision``."""

    numbers: int
    seed: int
    revision: int = 0


class Simulator:
    """Both providers' APIs on one loopback port, serving in a daemon thread.

    ``anchor`` (00:00 UTC of the day it started) fixes the dates relative to now, so every
    listing of the same dataset is byte-for-byte identical for the life of the process.
    """

    def __init__(self, *, host: str, port: int, numbers: int, seed: int) -> None:
        self._defaults = _checked(Dataset(numbers, seed))
        self._dataset = self._defaults
        self._lock = threading.Lock()
        self.anchor: date = today_anchor()
        self.faults = Faults()
        self.sinch = SinchState(self.faults)
        self.requests: list[RequestRecord] = []
        self.log: Callable[[str], None] | None = None  # e.g. print, to trace requests
        self._server = SimulatorHTTPServer((host, port), self)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="numbers-etl-simulator", daemon=True
        )

    def start(self) -> Simulator:
        """Start serving in the background thread."""
        self._thread.start()
        return self

    @property
    def dataset(self) -> Dataset:
        """The dataset being served."""
        return self._dataset

    def env(self) -> dict[str, str]:
        """Environment variables pointing numbers-etl at this simulator, with instance creds."""
        return {
            **self._urls(),
            "SINCH_INSTANCE_ID": SIM_SINCH_INSTANCE_ID,
            "SINCH_INSTANCE_SECRET": SIM_SINCH_INSTANCE_SECRET,
            "SINCH_ORGANISATION_ID": SIM_SINCH_ORGANISATION_ID,
            "PINGRAM_API_KEY": SIM_PINGRAM_API_KEY,
        }

    def login_env(self) -> dict[str, str]:
        """Like `env`, with the Sinch log-in pair instead of instance creds and no org id."""
        return {
            **self._urls(),
            "SINCH_EMAIL": SIM_SINCH_EMAIL,
            "SINCH_PASSWORD": SIM_SINCH_PASSWORD,
            "PINGRAM_API_KEY": SIM_PINGRAM_API_KEY,
        }

    def _urls(self) -> dict[str, str]:
        names = ("SINCH_BASE_URL", "SINCH_API_URL", "SINCH_LOGIN_URL", "PINGRAM_BASE_URL")
        return dict.fromkeys(names, self.url)

    def set_dataset(
        self, *, numbers: int | None = None, seed: int | None = None, revision: int | None = None
    ) -> None:
        """Serve another dataset from the next request on; unset arguments keep their value."""
        now = self._dataset
        self._dataset = _checked(
            Dataset(
                now.numbers if numbers is None else numbers,
                now.seed if seed is None else seed,
                now.revision if revision is None else revision,
            )
        )

    def sinch_listing(self) -> Listing:
        """The Sinch listing of the current dataset."""
        d = self._dataset
        return sinch_listing(d.numbers, d.seed, d.revision, self.anchor)

    def pingram_listing(self) -> Listing:
        """The Pingram listing of the current dataset."""
        d = self._dataset
        return pingram_listing(d.numbers, d.seed, d.revision, self.anchor)

    def record(self, endpoint: str, method: str, path: str, status: int) -> None:
        """Log a request as it is answered (thread-safe)."""
        entry = RequestRecord(endpoint, method, path, status, time.time())
        with self._lock:
            self.requests.append(entry)
            if len(self.requests) > REQUEST_LOG_LIMIT:  # a simulator left running for months
                del self.requests[: REQUEST_LOG_LIMIT // 2]
        if self.log is not None:
            self.log(f"{method} {path} -> {status} ({endpoint})")

    def count(self, endpoint: str) -> int:
        """How many requests to ``endpoint`` were answered since the last reset."""
        with self._lock:
            return sum(1 for r in self.requests if r.endpoint == endpoint)

    def reset(self) -> None:
        """Back to the served dataset at revision 0, no faults, an empty log, no instances."""
        self._dataset = self._defaults
        self.faults.clear()
        self.sinch.forget()
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def serve_forever(self) -> None:
        """Block until KeyboardInterrupt or SIGTERM, then stop (for `numbers-etl simulate`)."""
        stopping = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():

            def on_sigterm(signum: int, frame: FrameType | None) -> None:
                stopping.set()

            previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.stop()


def _checked(dataset: Dataset) -> Dataset:
    if not 0 <= dataset.numbers <= MAX_NUMBERS:
        raise ValueError(f"numbers must be between 0 and {MAX_NUMBERS}, not {dataset.numbers}")
    if dataset.revision < 0:
        raise ValueError(f"revision must not be negative, not {dataset.revision}")
    return dataset


def serve(
    *, host: str = "127.0.0.1", port: int = 0, numbers: int = 1000, seed: int = 1
) -> Simulator:
    """Start the simulator on ``host:port`` (0: any free port) in a daemon thread."""
    return Simulator(host=host, port=port, numbers=numbers, seed=seed).start()
