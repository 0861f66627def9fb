"""Start the web server with a real Celery worker, beat and the local models beside it, and supervise them.

This is the embedded default behind `make run`:
- one studio per data folder: a lock file that every child inherits, so a second `make run` on the same
  folder is refused while any process of the first is alive, even an orphan;
- each child runs in its own session and dies with this process (PR_SET_PDEATHSIG), so a killed web
  server leaves nothing behind;
- a child that dies is restarted with a growing pause and the log says so; /healthz reports a dead or
  frozen worker or beat through their heartbeats (apps/core/heartbeats.py);
- SIGTERM or Ctrl-C stops every child: TERM to its main process, then its whole session is killed after
  RUNSTUDIO_STOP_SECONDS (Celery acks late, so a task cut short is delivered again).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from studio.celery import QUEUES

_PR_SET_PDEATHSIG = 1


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent(parent_pid: int):
    """preexec_fn: the child gets SIGTERM when the process that started it dies, however it dies."""

    def setup() -> None:
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:  # not Linux: the lock below still refuses a second studio beside orphans
            pass
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class StudioLock:
    """An exclusive lock on DATA_DIR/studio.lock, held as long as runstudio or any child it started lives."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / "studio.lock"
        self.fd: int | None = None

    def acquire(self, details: dict[str, object]) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                held = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                held = {}
            os.close(fd)
            where = f" (pid {held.get('pid')}, {held.get('url')})" if held.get("pid") else ""
            raise CommandError(
                f"A studio is already running on the data folder {self.path.parent}{where}. Stop it first "
                "(Ctrl-C in its terminal, or kill its pid), or use another STUDIO_DATA_DIR."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(details).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Child:
    """One supervised process: started in its own session, restarted with backoff when it dies."""

    def __init__(self, name: str, argv: list[str], *, log, restart_on_failure_exit: bool = True):
        self.name = name
        self.argv = argv
        self.log = log
        self.restart_on_failure_exit = restart_on_failure_exit
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.backoff = 1.0
        self.next_start = 0.0
        self.given_up = False

    def start(self, *, lock_fd: int | None) -> None:
        self.process = subprocess.Popen(
            self.argv,
            cwd=settings.BASE_DIR,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
            pass_fds=(lock_fd,) if lock_fd is not None else (),
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - a single prctl, no locks taken
        )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill_leftovers(self) -> None:
        """Kill whatever is left in the child's session (a killed Celery main process leaves its pool)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float | None = None) -> None:
        timeout = settings.RUNSTUDIO_STOP_SECONDS if timeout is None else timeout
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the main process only: it stops its own pool
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_leftovers()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Supervisor:
    def __init__(self, children: list[Child], *, lock_fd: int | None, say, check_seconds: float = 1.0):
        self.children = children
        self.lock_fd = lock_fd
        self.say = say
        self.check_seconds = check_seconds
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="runstudio-supervisor", daemon=True)

    def start(self) -> None:
        for child in self.children:
            child.start(lock_fd=self.lock_fd)
            self.say(f"{child.name} started (pid {child.pid}).")
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(self.check_seconds):
            for child in self.children:
                try:
                    self._check(child)
                except Exception as exc:  # never let the watcher die: say so and keep watching
                    self.say(f"supervisor: could not check {child.name}: {exc}", error=True)

    def _check(self, child: Child) -> None:
        if child.given_up or child.process is None:
            return
        now = time.monotonic()
        code = child.process.poll()
        if code is None:
            if now - child.started_at > 60:
                child.backoff = 1.0  # it has run a while: the next failure starts the pauses afresh
            return
        if self.stopping.is_set():
            return
        if child.next_start == 0.0:
            child.kill_leftovers()
            if code > 0 and not child.restart_on_failure_exit:
                child.given_up = True
                self.say(f"{child.name} (pid {child.pid}) stopped with {describe_exit(code)}; see its log.", error=True)
                return
            child.next_start = now + child.backoff
            self.say(
                f"{child.name} (pid {child.pid}) died ({describe_exit(code)}); restarting in {child.backoff:.0f} s.",
                error=True,
            )
            child.backoff = min(child.backoff * 2, 30.0)
            return
        if now >= child.next_start:
            child.next_start = 0.0
            child.restarts += 1
            child.start(lock_fd=self.lock_fd)
            self.say(f"{child.name} restarted (pid {child.pid}, restart {child.restarts}).")

    def stop(self) -> None:
        self.stopping.set()
        threads = [threading.Thread(target=child.stop) for child in self.children]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class Command(BaseCommand):
    help = "Run the development web server with a Celery worker, beat and the local models, supervised."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker or beat.")
        parser.add_argument("--no-local-models", action="store_true", help="Do not install or start local models.")

    def say(self, message: str, *, error: bool = False) -> None:
        stamp = time.strftime("%H:%M:%S")
        (self.stderr if error else self.stdout).write(f"[runstudio {stamp}] {message}")
        (self.stderr if error else self.stdout).flush()

    def handle(self, *args, host: str, port: int, no_worker: bool, no_local_models: bool = False, **options):
        # runserver exits the process outright when its port is taken, which would orphan the worker: check first.
        if not _port_is_free(host, port):
            raise CommandError(f"Port {port} on {host} is in use: stop what runs there, or choose another (PORT=8001).")
        url = f"http://{host}:{port}/"
        lock = StudioLock(settings.DATA_DIR)
        lock.acquire({"pid": os.getpid(), "url": url})
        # A SIGTERM (a supervisor, `kill`, the process group of `make run`) ends the server like Ctrl-C,
        # so the children below are stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        log = (settings.DATA_DIR / "processes.log").open("a", buffering=1)
        children: list[Child] = []
        if getattr(settings, "LOCAL_MODELS", False) and not no_local_models:
            # Installs (minutes the first time) and serves the local model; a failed install is not retried.
            children.append(
                Child(
                    "Local models",
                    [sys.executable, "manage.py", "local_models", "up"],
                    log=(settings.DATA_DIR / "local_models.log").open("a", buffering=1),
                    restart_on_failure_exit=False,
                )
            )
        if not no_worker:
            children.append(
                Child(
                    "Celery worker",
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "studio",
                        "worker",
                        "-Q",
                        ",".join(QUEUES),
                        "--concurrency",
                        str(settings.WORKER_CONCURRENCY),
                        "--loglevel",
                        "WARNING",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    log=log,
                )  # fmt: skip
            )
            children.append(
                Child(
                    "Celery beat",
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "studio",
                        "beat",
                        "--loglevel",
                        "WARNING",
                        "--schedule",
                        settings.CELERY_BEAT_SCHEDULE_FILENAME,
                    ],
                    log=log,
                )  # fmt: skip
            )
        supervisor = Supervisor(children, lock_fd=lock.fd, say=self.say)
        try:
            supervisor.start()
            if any(child.name == "Local models" for child in children):
                completion = getattr(settings, "LOCAL_MODEL_COMPLETION", "")
                self.say(
                    f"Local model{f's (chat and {completion})' if completion else ''}: installing/starting in the "
                    "background; progress on the Models page, log in data/local_models.log. "
                    "LOCAL_MODELS=false turns this off."
                )
            if children:
                self.say("Worker and beat log to data/processes.log; a process that dies is restarted.")
            self.stdout.write(self.style.SUCCESS(f"\nPrompt Studio is starting on {url}"))
            if settings.DEBUG:
                self.stdout.write(f"Log in as {settings.DEMO_USERNAME} / {settings.DEMO_PASSWORD}\n")
            call_command("runserver", f"{host}:{port}", use_reloader=False, use_threading=True)
        finally:
            supervisor.stop()
            lock.release()
