"""First run: the commands `chartdraft demo` prints work as printed, one server per data folder,
and a busy port is reported before any URL.

The slow part is one real `chartdraft demo` (1 synthetic patient, extractive backend, free port,
temp data dir) shared by the tests marked "with the demo"; everything else runs in-process.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assistant.server_lock import ServerLock, bind_port, running_server
from retrieval.errors import Conflict

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "chartdraft"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """No CHARTDRAFT_* from the caller, and an empty per-user data folder: a command that
    forgets the demo's folder finds no patients instead of someone's real state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTDRAFT_")}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "share"), **extra})
    return env


# --- the lock and the port, in-process ----------------------------------------------------------
def test_one_server_per_data_folder(tmp_path: Path) -> None:
    assert running_server(tmp_path) is None
    with ServerLock.acquire(tmp_path, url="http://127.0.0.1:8123", dev_auth=True):
        info = running_server(tmp_path)
        assert info is not None and info.pid == os.getpid()
        assert info.url == "http://127.0.0.1:8123" and info.dev_auth
        with pytest.raises(Conflict) as exc:
            ServerLock.acquire(tmp_path, url="http://127.0.0.1:8124", dev_auth=False)
        msg = str(exc.value)
        assert f"pid {os.getpid()}" in msg and "http://127.0.0.1:8123" in msg
        assert "CHARTDRAFT_DATA_DIR" in msg and f"kill {os.getpid()}" in msg
    assert running_server(tmp_path) is None  # released
    ServerLock.acquire(tmp_path, url=None, dev_auth=False).release()  # and free again


def test_a_dead_servers_lock_is_taken_over(tmp_path: Path) -> None:
    # A real holder killed with SIGKILL (no clean-up ran), then a file naming a pid that never
    # existed: both are stale and the next server takes the folder.
    code = ("import sys, time\nfrom pathlib import Path\nfrom assistant.server_lock import "
            "ServerLock\nlock = ServerLock.acquire(Path(sys.argv[1]), url='http://127.0.0.1:9', "
            "dev_auth=False)\nprint('held', flush=True)\ntime.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        info = running_server(tmp_path)
        assert info is not None and info.pid == holder.pid
        with pytest.raises(Conflict):
            ServerLock.acquire(tmp_path, url=None, dev_auth=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert str(holder.pid) in (tmp_path / "server.lock").read_text()  # left behind...
    assert running_server(tmp_path) is None  # ...but nobody holds it
    (tmp_path / "server.lock").write_text('{"pid": 4194303, "url": "http://127.0.0.1:9", '
                                          '"data_dir": "x", "dev_auth": true}')
    assert running_server(tmp_path) is None
    with ServerLock.acquire(tmp_path, url="http://127.0.0.1:8125", dev_auth=False) as lock:
        assert lock.info.pid == os.getpid()
        assert running_server(tmp_path) == lock.info


def test_busy_port_is_refused_with_a_free_one_to_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Conflict) as exc:
            bind_port("127.0.0.1", port)
        fix = exc.value.fix or ""
        assert f"port {port}" in str(exc.value) and "--port" in fix and "CHARTDRAFT_PORT" in fix
        suggested = int(fix.split("--port ")[1].split()[0])
        bind_port("127.0.0.1", suggested).close()  # the suggestion is really free


# --- the CLI beside a server, in-process --------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CliRunner, Path]]:
    from assistant.settings import get_settings

    data = tmp_path / "data"
    monkeypatch.setenv("CHARTDRAFT_DATA_DIR", str(data))
    monkeypatch.delenv("CHARTDRAFT_API_KEYS", raising=False)
    monkeypatch.delenv("CHARTDRAFT_QDRANT_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner(), data
    get_settings.cache_clear()


def test_cli_without_a_way_in_says_what_to_do(cli: tuple[CliRunner, Path]) -> None:
    from assistant.cli import app

    runner, data = cli
    with ServerLock.acquire(data, url=f"http://127.0.0.1:{free_port()}", dev_auth=False):
        r = runner.invoke(app, ["draft", "--patient", "p-1"])
        assert r.exit_code == 2, r.output
        assert "no way to sign in" in r.output and f"kill {os.getpid()}" in r.output
        assert "curl -X POST" in r.output and "/v1/drafts" in r.output
        assert r.exception is None or isinstance(r.exception, SystemExit)

        r = runner.invoke(app, ["search", "--patient", "p-1", "blood pressure"])
        assert r.exit_code == 2, r.output
        assert "holds" in r.output and "stop it" in r.output and "Traceback" not in r.output


def test_cli_with_a_silent_server_says_so(cli: tuple[CliRunner, Path]) -> None:
    from assistant.cli import app

    runner, data = cli
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: a server still starting
    with ServerLock.acquire(data, url=url, dev_auth=True):
        r = runner.invoke(app, ["draft", "--patient", "p-1", "--backend", "extractive"])
    assert r.exit_code == 2, r.output
    assert "does not answer" in r.output and "wait until it prints" in r.output


def test_try_commands_name_the_folder_only_when_needed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.cli_service import try_commands
    from assistant.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(CLI)])
    default = Settings.model_fields["data_dir"].get_default(call_default_factory=True)
    plain = try_commands(Settings(data_dir=default), "p-1", serving=True)
    assert all("CHARTDRAFT_DATA_DIR" not in c for c in plain)
    local = try_commands(Settings(data_dir=tmp_path / ".data"), "p-1", serving=True)
    assert all(c.startswith("CHARTDRAFT_DATA_DIR=.data ") for c in local)
    assert not any(" search " in c for c in local)  # no search beside a server
    assert any(" search " in c for c in try_commands(Settings(data_dir=tmp_path / ".data"),
                                                      "p-1", serving=False))


# --- with the demo ------------------------------------------------------------------------------
@dataclass
class Demo:
    url: str
    port: int
    data: Path
    pid: int
    lines: list[str]
    home: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make install`")
    root = tmp_path_factory.mktemp("first-run")
    data, home, port = root / "data", root / "home", free_port()
    home.mkdir()
    env = clean_env(home, CHARTDRAFT_DATA_DIR=str(data), CHARTDRAFT_BACKEND="extractive",
                    CHARTDRAFT_DEV_AUTH="true")
    log = root / "demo.log"
    with log.open("w") as out:  # run as `make run` does: from the project folder
        proc = subprocess.Popen([".venv/bin/chartdraft", "demo", "--patients", "1", "--port",
                                 str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo exited {proc.returncode}: {log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"demo did not serve in 240 s: {log.read_text()[-3000:]}")
        yield Demo(url, port, data, proc.pid, log.read_text().splitlines(), home)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def printed_commands(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("try"))
    cmds = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        if not line.strip().startswith("("):
            cmds.append(line.strip())
    return cmds


def test_printed_try_commands_run_as_printed(demo: Demo) -> None:
    cmds = printed_commands(demo.lines)
    assert len(cmds) >= 2, demo.lines
    patient = next(c for c in cmds if "--patient" in c).split("--patient ")[1].split()[0]
    # The URL is printed only after the commands, once the port was ours.
    assert any(line.startswith(f"chartdraft on {demo.url}/ui") for line in demo.lines)
    seen = set()
    for cmd in cmds:
        assert shlex.split(cmd)[0].startswith("CHARTDRAFT_DATA_DIR="), cmd
        r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=clean_env(demo.home),
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr
        verb = shlex.split(cmd)[2]
        seen.add(verb)
        if verb == "patients":
            assert patient in r.stdout
        if verb == "draft":
            assert f"for patient {patient}" in r.stdout and "statements," in r.stdout
            assert f"{demo.url}/ui/drafts/" in r.stderr  # went through the demo's server
    assert {"patients", "draft"} <= seen


def test_second_server_on_the_folder_is_refused(demo: Demo) -> None:
    r = subprocess.run([str(CLI), "serve", "--port", str(free_port())], cwd=ROOT,
                       env=clean_env(demo.home, CHARTDRAFT_DATA_DIR=str(demo.data)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "chartdraft on" not in r.stdout
    assert f"pid {demo.pid}" in r.stderr and demo.url in r.stderr
    assert "CHARTDRAFT_DATA_DIR" in r.stderr and "Traceback" not in r.stderr


def test_serve_on_a_busy_port_says_so_before_any_url(demo: Demo, tmp_path: Path) -> None:
    r = subprocess.run([str(CLI), "serve", "--port", str(demo.port)], cwd=ROOT,
                       env=clean_env(demo.home, CHARTDRAFT_DATA_DIR=str(tmp_path / "other")),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "http://" not in r.stdout and "already in use" in r.stderr and "--port" in r.stderr
    assert running_server(tmp_path / "other") is None  # its lock was given back
