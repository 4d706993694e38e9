"""Shared pieces of the side-by-side benchmarks: a real hubbub server and small statistics.

Benchmarks start the server exactly as a user would (``hubbub serve`` as a
subprocess, its own data dir), so what they measure includes uvicorn, the
middleware, the dialect and the provider: the whole code path, nothing mocked.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the benchmark dies, so no server outlives it (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class HubbubServer:
    """``hubbub serve`` on 127.0.0.1 in a subprocess, ready when ``__enter__`` returns.

    The log goes to a file in the temporary data dir and is printed if the
    server fails to come up, so a broken start is never silent.
    """

    def __init__(self, env: dict[str, str] | None = None, ready_timeout: float = 120.0,
                 config: str | None = None) -> None:
        """``config``: the text of a ``hubbub.toml`` for the server (written in its working dir)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra_env = env or {}
        self._ready_timeout = ready_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="hubbub-bench-")
        self.log_path = Path(self._tmp.name) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if config is not None:
            (Path(self._tmp.name) / "hubbub.toml").write_text(config)

    def __enter__(self) -> "HubbubServer":
        data_dir = Path(self._tmp.name) / "data"
        env = {**os.environ, "HUBBUB_LOG_LEVEL": "warning", **self._extra_env}
        env.pop("HUBBUB_CONFIG", None)  # defaults, or the ``config`` given: never a local config
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "hubbub"), "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self._tmp.name,  # no stray hubbub.toml from the repo is picked up, only ``config``
            preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"hubbub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hubbub not ready after {self._ready_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (uvicorn shuts down gracefully); SIGKILL only if it hangs."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        elif self.proc is not None:
            code = self.proc.returncode
        if not self._log.closed:
            self._log.close()
        self._tmp.cleanup()
        return code

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CpuMeter:
    """How busy the machine was with *other* processes over an interval (Linux ``/proc``).

    The benchmark shares its cores with whatever else runs on the box; on a
    2-core machine one stray ``pytest`` running the model halves llama.cpp's
    speed. ``foreign`` is the share of all cores used by processes outside
    ``pids`` (plus time stolen by the hypervisor), so a noisy run is visible
    instead of silently skewing the ratio.
    """

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.ncpu = os.cpu_count() or 1
        self._start = self._read()

    @staticmethod
    def _system() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return user + nice + system + irq + softirq + steal, user + nice + system + idle + iowait + irq + softirq + steal

    def _ours(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    after_name = f.read().rsplit(")", 1)[1].split()
                total += int(after_name[11]) + int(after_name[12])  # utime, stime (all threads)
            except (OSError, IndexError, ValueError):
                pass
        return total

    def _read(self) -> tuple[int, int, int]:
        busy, total = self._system()
        return busy, total, self._ours()

    def restart(self) -> None:
        self._start = self._read()

    def foreign(self) -> float:
        """Share of the machine (0..1) used by others since the last ``restart``."""
        busy0, total0, ours0 = self._start
        busy1, total1, ours1 = self._read()
        if total1 <= total0:
            return 0.0
        return max(0.0, ((busy1 - busy0) - (ours1 - ours0)) / (total1 - total0))

    def wait_quiet(self, threshold: float, timeout: float, window: float = 0.5) -> float:
        """Wait (up to ``timeout`` s) for a ``window`` in which others use < ``threshold``; return the last level."""
        deadline = time.monotonic() + timeout
        while True:
            self.restart()
            time.sleep(window)
            level = self.foreign()
            if level < threshold or time.monotonic() >= deadline:
                return level


def thread_cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system) of one thread; ``tid`` defaults to the main thread (the event loop)."""
    try:
        with open(f"/proc/{pid}/task/{tid or pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


Job = dict[str, Any]


def _serve_jobs(conn: Any, run_job: Callable[[Job], Awaitable[Job]]) -> None:
    """In the load process: run each job sent over ``conn`` on a fresh event loop, send back its result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per concurrent request
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(asyncio.run(run_job(job)))
        except Exception as exc:  # reported to the parent, which raises it
            conn.send({"error": f"{type(exc).__name__}: {exc}"})


class LoadProcess:
    """A load generator in a process of its own (its CPU never competes with the benchmark's
    GIL), running ``run_job`` (a module-level coroutine function) for each ``run`` call."""

    def __init__(self, run_job: Callable[[Job], Awaitable[Job]]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_jobs, args=(child, run_job), daemon=True)
        self.proc.start()

    def run(self, **job: Any) -> Job:
        self._conn.send(job)
        result = self._conn.recv()
        if "error" in result:
            raise RuntimeError(f"load generator: {result['error']}")
        return result

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
