"""`runstudio` (what `make run` starts) as a user meets it: one studio per data folder, processes that die are
restarted, a SIGTERM to the process group or a killed web process leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "STUDIO_DATA_DIR": str(tmp_path),
        "LOCAL_MODELS": "false",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HEARTBEAT_SECONDS": "1",
        "HEARTBEAT_STALE_SECONDS": "6",
        "RUNSTUDIO_STOP_SECONDS": "10",
    }


def _free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def _wait(condition, timeout: float = 60.0, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def _session_members(sid: int) -> list[int]:
    """Live processes whose session id is `sid` (a child's pool, say)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


class Studio:
    """`manage.py runstudio` in a process group of its own, as `make run` runs it; its output is collected."""

    def __init__(self, tmp_path: Path, port: int | None = None):
        self.port = port or _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runstudio", "--port", str(self.port)],
            cwd=settings.BASE_DIR,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self, name: str) -> list[int]:
        return [int(pid) for pid in re.findall(rf"{name} (?:re)?started \(pid (\d+)", self.output)]

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        assert _wait(lambda: text in self.output, timeout), f"never said {text!r}:\n{self.output}"

    def healthz(self) -> dict:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz?workers=1", timeout=5) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())
        except OSError:
            return {}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def migrated(tmp_path):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=settings.BASE_DIR,
        env=_env(tmp_path),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return tmp_path


def test_it_refuses_a_busy_port_without_leaving_a_worker_behind(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "runstudio", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"Port {port}" in result.stderr and "in use" in result.stderr
    assert "Celery worker started" not in result.stdout


def test_a_sigterm_to_the_process_group_leaves_no_process_behind(tmp_path):
    studio = Studio(tmp_path)
    try:
        studio.wait_for("Prompt Studio is starting")
        studio.wait_for("Celery beat started")
        worker, beat = studio.pids("Celery worker")[0], studio.pids("Celery beat")[0]
        # The worker's pool is up: its session has more than the main process.
        assert _wait(lambda: len(_session_members(worker)) >= 2, 60), studio.output
        pool = _session_members(worker)
        started = time.monotonic()
    finally:
        studio.stop()
    assert studio.process.returncode is not None
    assert _wait(lambda: not any(_alive(pid) for pid in [*pool, beat]), 20), studio.output
    assert not _session_members(worker) and not _session_members(beat)
    assert time.monotonic() - started < 30  # no Celery process hangs on for a minute and more


def test_a_second_studio_on_the_same_data_folder_is_refused(tmp_path):
    studio = Studio(tmp_path)
    try:
        studio.wait_for("Prompt Studio is starting")
        second = subprocess.run(
            [sys.executable, "manage.py", "runstudio", "--port", str(_free_port())],
            cwd=settings.BASE_DIR,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "already running on the data folder" in second.stderr
        assert f"pid {studio.process.pid}" in second.stderr
        assert "Celery worker started" not in second.stdout
    finally:
        studio.stop()


def test_a_killed_web_process_takes_its_children_along_and_frees_the_folder(tmp_path):
    studio = Studio(tmp_path)
    try:
        studio.wait_for("Celery beat started")
        worker, beat = studio.pids("Celery worker")[0], studio.pids("Celery beat")[0]
        assert _wait(lambda: len(_session_members(worker)) >= 2, 60), studio.output
        os.kill(studio.process.pid, signal.SIGKILL)  # the web process, as the OOM killer would
        studio.process.wait(timeout=10)
        assert _wait(
            lambda: not _session_members(worker) and not _session_members(beat), 30
        ), f"left behind: {_session_members(worker) + _session_members(beat)}"
    finally:
        studio.stop()
    again = Studio(tmp_path)
    try:
        again.wait_for("Prompt Studio is starting")
        assert "already running" not in again.output
    finally:
        again.stop()


def test_a_killed_worker_or_beat_is_restarted_and_health_follows(migrated):
    studio = Studio(migrated)
    try:
        studio.wait_for("Celery beat started")
        assert _wait(lambda: studio.healthz().get("status") == "ok", 90), (studio.healthz(), studio.output)
        for name in ("Celery beat", "Celery worker"):
            pid = studio.pids(name)[-1]
            os.kill(pid, signal.SIGKILL)
            studio.wait_for(f"{name} (pid {pid}) died (signal SIGKILL); restarting")
            assert _wait(lambda name=name, pid=pid: studio.pids(name)[-1] != pid, 30), studio.output
            assert _alive(studio.pids(name)[-1])
        assert _wait(lambda: studio.healthz().get("status") == "ok", 60), (studio.healthz(), studio.output)
        # A frozen beat (SIGSTOP: alive, but silent) goes stale and /healthz says so.
        beat = studio.pids("Celery beat")[-1]
        os.kill(beat, signal.SIGSTOP)
        try:
            assert _wait(lambda: studio.healthz().get("beat") == "down", 30), studio.healthz()
            health = studio.healthz()
            assert health["status"] == "down" and "no Celery beat alive" in health["errors"]["beat"]
            assert health["worker"] == "ok"
        finally:
            os.kill(beat, signal.SIGCONT)
        assert _wait(lambda: studio.healthz().get("status") == "ok", 30), studio.healthz()
    finally:
        studio.stop()
