"""One chartdraft server per data folder, and a port that is really free before we say so.

The embedded index (qdrant-edge) can be opened by one process at a time, so two servers on one
data folder cannot both work: the second used to start and then fail every draft. A server
(``chartdraft serve`` or ``demo``) therefore holds ``<data_dir>/server.lock`` for as long as it
runs: an exclusive ``flock`` plus, inside the file, its pid and URL as JSON. The kernel drops the
flock when the process dies however it dies, so a lock left by a dead server is simply free and is
taken over; nothing has to guess whether an old pid was reused. (The JSON may outlive a server
stopped by a signal: it means something only while the file is locked.) The CLI reads the same
file to send its index work to the running server instead of failing on the index lock.

    with ServerLock.acquire(data_dir, url="http://127.0.0.1:8000", dev_auth=True):
        ...serve...
    running_server(data_dir)   # ServerInfo(pid, url, ...) or None
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from retrieval.errors import BadInput, Conflict

LOCK_NAME = "server.lock"
_HAVE_FLOCK = sys.platform != "win32"
if _HAVE_FLOCK:
    import fcntl


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    url: str | None  # None while the holder is a `demo --no-serve` that only ingests
    data_dir: str
    dev_auth: bool = False
    started: str = ""

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "pid unknown"
        return f"{who}, serving {self.url}" if self.url else f"{who}, ingesting (not serving)"

    def stop_hint(self) -> str:
        how = f"`kill {self.pid}`, or " if self.pid else ""
        return f"stop it ({how}Ctrl-C in its terminal)"


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_NAME


def url_for(host: str, port: int) -> str:
    """The URL a client on this machine uses (a wildcard bind is reached on loopback)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class ServerLock:
    """Held by the serving process; ``release`` (or process exit) frees it."""

    def __init__(self, path: Path, fh: IO[str], info: ServerInfo) -> None:
        self.path, self._fh, self.info = path, fh, info

    @classmethod
    def acquire(cls, data_dir: Path, *, url: str | None, dev_auth: bool) -> ServerLock:
        """Take the data folder, or raise Conflict naming the server that has it."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        path = lock_path(data_dir)
        fh = path.open("a+", encoding="utf-8")  # never truncate before we own it
        # A CLI probing the lock holds it shared for a moment: retry briefly before refusing.
        for attempt in range(5):
            if _try_lock(fh, exclusive=True):
                break
            if attempt == 4:
                fh.close()
                holder = _read(path) or ServerInfo(pid=0, url=None, data_dir=str(data_dir))
                raise _busy_error(holder, data_dir)
            time.sleep(0.1)
        info = ServerInfo(pid=os.getpid(), url=url, data_dir=str(data_dir), dev_auth=dev_auth,
                          started=datetime.now(UTC).isoformat(timespec="seconds"))
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(asdict(info)))
        fh.flush()
        return cls(path, fh, info)

    def release(self) -> None:
        if self._fh.closed:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()  # an empty, unlocked file reads as "no server"
            self._fh.flush()
        finally:
            _unlock(self._fh)
            self._fh.close()

    def __enter__(self) -> ServerLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_server(data_dir: Path) -> ServerInfo | None:
    """The live server holding this data folder, or None (no file, empty, or its holder died)."""
    path = lock_path(Path(data_dir))
    try:
        fh = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        return None
    with fh:
        if _try_lock(fh, exclusive=False):
            _unlock(fh)
            return None  # nobody holds it: whatever the file says is stale
        for _ in range(5):  # the holder may be writing its JSON this very moment
            info = _read(path)
            if info is not None:
                return info
            time.sleep(0.05)
        return ServerInfo(pid=0, url=None, data_dir=str(data_dir))


def _busy_error(holder: ServerInfo, data_dir: Path) -> Conflict:
    return Conflict(
        f"another chartdraft server already uses the data folder {data_dir} "
        f"({holder.describe()})",
        where=str(lock_path(data_dir)),
        fix=f"use that one{f' at {holder.url}/ui' if holder.url else ''}; or {holder.stop_hint()} "
        "and start again; or give this one its own folder, e.g. "
        "CHARTDRAFT_DATA_DIR=/tmp/chartdraft-2 chartdraft serve --port 8001",
    )


def _read(path: Path) -> ServerInfo | None:
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return ServerInfo(pid=int(raw["pid"]), url=raw.get("url"), data_dir=str(raw["data_dir"]),
                          dev_auth=bool(raw.get("dev_auth")), started=str(raw.get("started", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _try_lock(fh: IO[str], *, exclusive: bool) -> bool:
    if not _HAVE_FLOCK:  # no flock: trust the pid written in the file, if it is alive
        info = _read(Path(fh.name))
        return info is None or info.pid == os.getpid() or not _pid_alive(info.pid)
    try:
        fcntl.flock(fh.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fh: IO[str]) -> None:
    if _HAVE_FLOCK:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the port -----------------------------------------------------------------------------------
def bind_port(host: str, port: int) -> socket.socket:
    """A listening socket on host:port for uvicorn to serve on, bound BEFORE any URL is printed.

    Handing uvicorn the socket we checked leaves no gap in which another process could take the
    port between the check and the start.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT ok
    try:
        sock.bind((host, port))
        sock.listen(2048)  # listening is what claims the port on Linux
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            alt = free_port_near(host, port)
            raise Conflict(
                f"port {port} on {host} is already in use by another program",
                where=f"{host}:{port}",
                fix=f"start on a free port: --port {alt} (or CHARTDRAFT_PORT={alt}, e.g. "
                f"`CHARTDRAFT_PORT={alt} make run`); or stop what listens on {port}",
            ) from None
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                       where="--host/--port (CHARTDRAFT_HOST/CHARTDRAFT_PORT)",
                       fix="use an address of this machine (127.0.0.1 by default) and a port "
                       "above 1023") from None
    return sock


def free_port_near(host: str, port: int) -> int:
    """The first free port above ``port`` (to suggest), else one the OS picks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in [*range(port + 1, min(port + 20, 65535)), 0]:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    return port + 1
