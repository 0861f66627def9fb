"""Fetch benchmark: the prompt endpoint against a bare Django JSON view, both under the same gunicorn.

    make bench                       # a temporary SQLite database
    DATABASE_URL=postgres://... make bench   # PostgreSQL (use a scratch database: a bench project is added)

Starts gunicorn with production settings (DEBUG off, a random SECRET_KEY) and
the bench-only URLconf (bench/support), then drives, interleaved over several
rounds, with wrk on 127.0.0.1:

  bare          GET /bench/bare                  a bare Django JSON view, no auth
  authed        GET /bench/authed                the same JSON behind the prompt endpoint's key check and throttle
  fetch         GET /api/v1/prompts/{name}       the real endpoint, full answer
  not_modified  GET /api/v1/prompts/{name}       with If-None-Match: the current ETag (304)

and prints the median requests/s of each, p50 and p99 latencies, and the ratios
(each taken within a round, median over the rounds)
fetch_vs_bare (target >= 0.8), not_modified_vs_fetch (target >= 1.2) and
auth_overhead (bare / authed throughput; 1.00 means the key check costs nothing).

Then the same process under attack: four threads render hostile templates
(apps/api/tests/test_hostile_concurrency.py's four, each refused with a 400) on
the same gunicorn process without pause, while one client requests
`/healthz?scope=web` and the fetch one after another (30 each, 50 ms apart);
quiet and attacked runs alternate, and the ratios
healthz_p50_under_attack_vs_quiet and fetch_p50_under_attack_vs_quiet compare
their median latencies (target <= 5: a hostile template must not stall the
process that holds it).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))  # one process: wrk cannot pile its connections on one of two
PROMPT = "support-reply"
sys.path.insert(0, str(ROOT))
from apps.prompts.tests.hostile import CONCURRENT  # noqa: E402 - the four templates the under-attack rounds render

HOSTILE = [source for source, _ in CONCURRENT]
ATTACK_ROUNDS = int(os.environ.get("BENCH_ATTACK_ROUNDS", "3"))


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing; installing Debian's wrk package (needs root) ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed; install it with: apt-get install wrk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_environment(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.support.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "STATIC_MANIFEST": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "STUDIO_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        # The throttle runs on every request, as in production, with a limit the bench never reaches.
        "API_THROTTLE_RATE": "1000000000/min",
        "PYTHONPATH": str(ROOT),
    }
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    return env


def seed(env: dict[str, str]) -> tuple[str, str]:
    """Migrate, add a bench project with prompts and a read key; returns (key, project slug)."""
    script = r"""
import secrets, sys
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from apps.accounts.services import project_create, api_key_create
from django.contrib.auth import get_user_model
from apps.prompts import services
from apps.prompts.content import build_content
suffix = secrets.token_hex(3)
user = get_user_model().objects.create(username=f"bench-{suffix}")
project = project_create(name=f"Bench {suffix}", slug=f"bench-{suffix}", creator=user)
for index in range(20):
    name = "support-reply" if index == 0 else f"prompt-{index}"
    prompt = services.prompt_create(project=project, name=name, actor=user)
    content = build_content(kind="chat", messages=[
        {"role": "system", "content": "You are a concise, friendly support agent for {{ product }}. " * 3},
        {"role": "user", "content": "Customer {{ customer_name }} writes:\n{{ ticket }}"},
    ], config={"temperature": 0.3, "max_tokens": 200})
    version = services.prompt_version_create(prompt=prompt, content=content, parent_number=None, message="", actor=user)
    services.label_move(prompt=prompt, label_name="production", version=version, actor=user)
for index, source in enumerate(HOSTILE):
    prompt = services.prompt_create(project=project, name=f"hostile-{index}", actor=user)
    content = build_content(kind="text", template=source, config={})
    services.prompt_version_create(prompt=prompt, content=content, parent_number=None, message="", actor=user)
_, raw = api_key_create(project=project, name="bench", scope="read", actor=user)
print(raw, project.slug)
"""
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\nHOSTILE = {HOSTILE!r}\n{script}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"Seeding the bench database failed:\n{result.stderr}")
    raw_key, slug = result.stdout.strip().splitlines()[-1].split()
    return raw_key, slug


def unseed(env: dict[str, str], slug: str) -> None:
    script = (
        "import django; django.setup()\n"
        f"from apps.accounts.models import Project\nProject.objects.filter(slug={slug!r}).delete()"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=False, capture_output=True)


def start_gunicorn(env: dict[str, str], port: int, threads: int = 4) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "studio.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(WORKERS), "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare", timeout=1):  # noqa: S310 - loopback
                return process
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    sys.exit("gunicorn did not answer within 30 seconds")


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def run_wrk(wrk: str, url: str, headers: dict[str, str]) -> dict[str, float]:
    command = [wrk, "-t", "1", "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if _NON_2XX.search(output):
        sys.exit(f"wrk saw error responses from {url}:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latencies = {f"p{p}": float(v) * scale[u] for p, v, u in _LATENCY.findall(output)}
    return {"rps": float(_RPS.search(output).group(1)), **latencies}


def post_json(url: str, headers: dict[str, str], body: dict) -> int:
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=data, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def sequential_p50(url: str, headers: dict[str, str], count: int = 30) -> float:
    """Median latency (ms) of `count` requests one after another, 50 ms apart: what one client sees."""
    latencies = []
    for _ in range(count):
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    return statistics.median(latencies)


def under_attack(base: str, auth: dict[str, str]) -> dict[str, float]:
    """Median latencies of /healthz and the fetch with four hostile renders running, against quiet runs."""
    targets = {"healthz": (f"{base}/healthz?scope=web", {}), "fetch": (f"{base}/api/v1/prompts/{PROMPT}", auth)}
    stop = threading.Event()
    statuses: list[int] = []

    def attack(index: int) -> None:
        body = {"version": 1, "variables": CONCURRENT[index][1]}
        while not stop.is_set():
            statuses.append(post_json(f"{base}/api/v1/prompts/hostile-{index}/render", auth, body))

    quiet: dict[str, list[float]] = {name: [] for name in targets}
    attacked: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(ATTACK_ROUNDS):
        for name, (url, headers) in targets.items():
            quiet[name].append(sequential_p50(url, headers))
        stop.clear()
        attackers = [threading.Thread(target=attack, args=(index,)) for index in range(len(HOSTILE))]
        for thread in attackers:
            thread.start()
        time.sleep(1.0)  # every attacker has a render under way
        try:
            for name, (url, headers) in targets.items():
                attacked[name].append(sequential_p50(url, headers))
        finally:
            stop.set()
            for thread in attackers:
                thread.join()
    if not statuses or set(statuses) != {400}:
        sys.exit(f"the hostile renders were not all refused with a 400: {sorted(set(statuses))}")
    print(f"  under attack ({len(statuses)} hostile renders refused): "
          + ", ".join(f"{n} p50 {statistics.median(attacked[n]):.1f} ms (quiet {statistics.median(quiet[n]):.1f} ms)"
                      for n in targets), flush=True)  # fmt: skip
    return {
        f"{name}_p50_under_attack_vs_quiet": statistics.median(
            a / q for a, q in zip(attacked[name], quiet[name], strict=True)
        )
        for name in targets
    }


def main() -> int:
    wrk = ensure_wrk()
    data_dir = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    env = bench_environment(data_dir)
    database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite (temporary)"
    print(f"fetch bench: gunicorn {WORKERS} workers x 4 threads, DEBUG off, {database}; wrk -c {CONNECTIONS}, "
          f"{ROUNDS} rounds x {SECONDS} s per target, interleaved", flush=True)  # fmt: skip
    raw_key, slug = seed(env)
    port = free_port()
    try:
        server = start_gunicorn(env, port)
        try:
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {raw_key}"}
            status, headers = get(f"{base}/api/v1/prompts/{PROMPT}", auth)
            assert status == 200, status
            etag = headers["ETag"]
            assert get(f"{base}/api/v1/prompts/{PROMPT}", {**auth, "If-None-Match": etag})[0] == 304
            assert get(f"{base}/bench/authed", auth)[0] == 200
            targets = {
                "bare": (f"{base}/bench/bare", {}),
                "authed": (f"{base}/bench/authed", auth),
                "fetch": (f"{base}/api/v1/prompts/{PROMPT}", auth),
                "not_modified": (f"{base}/api/v1/prompts/{PROMPT}", {**auth, "If-None-Match": etag}),
            }
            for url, target_headers in targets.values():  # warm up every worker and cache
                run_wrk_short = [wrk, "-t", "1", "-c", str(CONNECTIONS), "-d", "1s", url]
                for name, value in target_headers.items():
                    run_wrk_short[1:1] = ["-H", f"{name}: {value}"]
                subprocess.run(run_wrk_short, capture_output=True, check=True)
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            names = list(targets)
            for round_number in range(ROUNDS):
                order = names[round_number % len(names) :] + names[: round_number % len(names)]
                for name in order:
                    url, target_headers = targets[name]
                    results[name].append(run_wrk(wrk, url, target_headers))
                print(f"  round {round_number + 1}: "
                      + ", ".join(f"{n} {results[n][-1]['rps']:.0f}/s" for n in names), flush=True)  # fmt: skip
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        # A process with threads to spare (8, as in the test), so four attackers cannot simply take every thread:
        # what is measured is whether a hostile render stalls the rest of its process.
        port = free_port()
        server = start_gunicorn(env, port, threads=8)
        try:
            attack_ratios = under_attack(f"http://127.0.0.1:{port}", auth)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)

    finally:
        if "postgres" in env["DATABASE_URL"]:
            unseed(env, slug)
        shutil.rmtree(data_dir, ignore_errors=True)

    summary = {
        name: {metric: statistics.median(r[metric] for r in runs) for metric in ("rps", "p50", "p99")}
        for name, runs in results.items()
    }
    print()
    print(f"{'target':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in summary.items():
        print(f"{name:<14}{values['rps']:>10.0f}{values['p50']:>10.2f}{values['p99']:>10.2f}")

    # Each ratio is taken within a round (the targets ran back to back there) and the median over rounds is
    # printed, so a load change on the machine between rounds does not skew it.
    def paired(top: str, bottom: str) -> float:
        return statistics.median(a["rps"] / b["rps"] for a, b in zip(results[top], results[bottom], strict=True))

    ratios = {
        "fetch_vs_bare": paired("fetch", "bare"),
        "not_modified_vs_fetch": paired("not_modified", "fetch"),
        "auth_overhead": paired("bare", "authed"),
    }
    print()
    print(f"fetch_vs_bare: {ratios['fetch_vs_bare']:.2f} (target >= 0.8)")
    print(f"not_modified_vs_fetch: {ratios['not_modified_vs_fetch']:.2f} (target >= 1.2)")
    print(f"auth_overhead: {ratios['auth_overhead']:.2f} (bare / authed throughput; 1.00 = free)")
    for name, value in attack_ratios.items():
        print(f"{name}: {value:.2f} (target <= 5)")
    ratios.update(attack_ratios)
    for name, values in summary.items():
        print(f"{name}_p50_ms: {values['p50']:.2f}  {name}_p99_ms: {values['p99']:.2f}")
    print(json.dumps({"summary": summary, "ratios": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
