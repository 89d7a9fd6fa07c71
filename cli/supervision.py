"""How `trainlab serve` stops: promptly, completely, whatever signal it gets.

`serve` runs uvicorn in its main thread and, by default on the embedded broker, a `trainlab
worker` child. Its first SIGTERM, SIGINT or SIGQUIT (to the process, or to its whole process
group):

1. arms a kernel alarm (SIGALRM, default action) for the grace period plus a margin, so serve
   ends then even if its own cleanup hangs;
2. tells the embedded worker to stop (SIGTERM: the worker hands its run back at the next flush
   and exits; the worker has its own alarm, see worker/shutdown.py) and stops restarting it;
3. lets uvicorn shut down, open connections (SSE streams) given the grace period at most;
4. then waits for the worker, kills its whole process tree if it outlives the grace period,
   and exits with 128 + the signal's number.

uvicorn re-raises a signal it caught once it has shut down; with serve's own handler in place
that re-raise is harmless, so the cleanup in step 4 always runs (SIGTERM used to kill serve
there and leave the worker behind).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

import uvicorn

from worker.shutdown import SHUTDOWN_SIGNALS, arm_deadline, kill_tree

logger = logging.getLogger("trainlab")

# Past the grace period, how long serve waits before the alarm ends it: time for the worker's
# own alarm to fire first and for serve to see it exit.
SERVE_MARGIN_S = 5.0


class EmbeddedWorker:
    """`trainlab worker` as a child of `trainlab serve`, restarted if it dies, so the
    embedded default runs the very same task code path as a production worker."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._process: subprocess.Popen[bytes] | None = None
        # Reentrant: the signal handler runs in the main thread, which may hold it in stop().
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="embedded-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        # Through the launcher (trainlab/_launch.py), which finds the service's packages in
        # an installed wheel as well as in a checkout.
        command = [
            sys.executable,
            "-m",
            "trainlab",
            "worker",
            # Stop when serve dies, even by SIGKILL (a parent-death signal).
            f"--exit-with-parent={os.getpid()}",
        ]
        with self._lock:
            if self._stopping.is_set():
                return None
            logger.info("starting the embedded worker: %s", " ".join(command))
            # Same process group as serve: a signal to the group reaches both.
            self._process = subprocess.Popen(command)
            return self._process

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = self._spawn()
            if process is None:
                return
            code = process.wait()
            # A signal to the whole group may end the worker a moment before serve's own
            # handler runs: wait before restarting, so a shutdown isn't taken for a crash.
            if self._stopping.wait(2.0):
                return
            logger.warning("embedded worker exited with %s; restarting", code)

    def begin_stop(self) -> None:
        """Stop restarting the worker and ask it to stop (it hands its run back)."""
        with self._lock:
            self._stopping.set()
            process = self._process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the worker, waiting at most the grace period before killing its tree."""
        self.begin_stop()
        process = self._process
        if process is not None:
            try:
                process.wait(timeout=self.grace_s + 2.0)
            except subprocess.TimeoutExpired:
                logger.error("embedded worker still running after %.0f s; killing", self.grace_s)
                kill_tree(process.pid)
                process.wait()
        self._thread.join(timeout=5)


class ServeShutdown:
    """Serve's signal handling around a uvicorn Server (see the module's docstring)."""

    def __init__(self, grace_s: float, worker: EmbeddedWorker | None) -> None:
        self.grace_s = grace_s
        self.worker = worker
        self.signum: int | None = None
        self.server: uvicorn.Server | None = None

    def install(self, server: uvicorn.Server) -> None:
        """Handle every shutdown signal from now on. uvicorn swaps in its own handler for
        SIGINT and SIGTERM while it serves (it calls `on_signal` through `StoppableServer`),
        then puts these back and re-raises the signal into them."""
        self.server = server
        for signum in SHUTDOWN_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.server is not None:
            self.server.handle_exit(signum, frame)
        else:
            self.on_signal(signum)

    def on_signal(self, signum: int) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        arm_deadline(self.grace_s + SERVE_MARGIN_S)
        if self.worker is not None:
            self.worker.begin_stop()

    @property
    def exit_code(self) -> int:
        return 0 if self.signum is None else 128 + self.signum


class StoppableServer(uvicorn.Server):
    """uvicorn's server, telling `shutdown` about each signal it catches."""

    def __init__(self, config: uvicorn.Config, shutdown: ServeShutdown) -> None:
        super().__init__(config)
        self._shutdown = shutdown

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._shutdown.on_signal(sig)
        super().handle_exit(sig, frame)


def serve_app(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    grace_s: float,
    embedded_worker: bool,
    **server_options: Any,
) -> int:
    """Serve `app` until a signal; returns the process's exit code. `server_options` go to
    uvicorn.Config as they are (cli/service.http_options)."""
    worker = EmbeddedWorker(grace_s) if embedded_worker else None
    shutdown = ServeShutdown(grace_s, worker)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, int(grace_s)),
        **server_options,
    )
    server = StoppableServer(config, shutdown)
    shutdown.install(server)
    if worker is not None:
        worker.start()
    try:
        server.run()
    finally:
        if worker is not None:
            worker.stop()
    if shutdown.signum is None and not server.started:
        return 3  # uvicorn's code for a server that could not start (port taken, ...)
    return shutdown.exit_code
