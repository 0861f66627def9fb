import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "STUDIO_DATA_DIR": str(tmp_path), "LOCAL_MODELS": "false", "PYTHONUNBUFFERED": "1"}


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


def test_a_sigterm_stops_the_server_and_its_worker(tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runstudio", "--port", str(port)],
        cwd=settings.BASE_DIR,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    worker_pid = None
    for line in server.stdout:
        if "Celery worker started (pid" in line:
            worker_pid = int(line.split("pid ")[1].split(")")[0])
        if "Prompt Studio is starting" in line:
            break
    assert worker_pid
    time.sleep(2)
    server.terminate()
    server.wait(timeout=30)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{worker_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{worker_pid}").exists() or "zombie" in Path(f"/proc/{worker_pid}/status").read_text()
