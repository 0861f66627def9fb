"""Benchmark: an experiment's fan-out through real Celery workers on the configured broker.

2,000 cells against the simulated OpenAI-compatible server with 100 ms latency
per call and a total concurrency of 50 (the endpoint's limit, shared by the
workers). Prints:

- `fanout_vs_ideal: <ratio>`: wall time from start to the last cell written,
  over the ideal N x latency / concurrency (target <= 1.25);
- `fanout_vs_raw_http: <ratio>`: the same wall time over the floor measured in this run:
  2,000 calls with concurrency 50 to the same server from a bare aiohttp client in its own
  process (no litellm, no database, no broker);
- `fanout_vs_litellm_floor: <ratio>`: the same wall time over what litellm alone allows on this
  machine, measured in this run: the 2,000 calls through the gateway in as many processes as the
  workers have, with nothing of the studio around them (`litellm_floor_vs_ideal` shows how far
  that floor itself is from the ideal);
- cells per second, and the workers' CPU milliseconds per cell (their processes' CPU time during the run,
  from /proc; start-up excluded: a 100-cell experiment warms the workers first) beside the litellm
  floor's own CPU milliseconds per cell;
- the CPU milliseconds per cell of the machine's PostgreSQL and Redis servers during the run (what the
  workers' own figure leaves out; whoever else uses those servers is counted too);
- the mean number of calls in flight at the server, and how busy the machine's CPUs were.

Each worker runs as docker-compose starts one: prefork with two processes, two workers.
BENCH_WORKERS, BENCH_CONCURRENCY, BENCH_POOL and BENCH_WINDOW (EXPERIMENT_WINDOW) vary that.
BENCH_AS_MAKE_RUN=1 measures the one worker that `make run` starts instead: runstudio's command lines
(the worker on both queues with WORKER_CONCURRENCY processes, and beat beside it) and the studio's
default settings.

BENCH_FAULTS=0.2 injects faults into that share of the calls, to the studio and to the floor alike:
two fifths 429 with `Retry-After: 1`, two fifths 500, one fifth hangs (cut by the endpoint's 2 s
timeout); the endpoint retries up to 6 times (target: fanout_vs_litellm_floor <= 1.25).

Runs standalone: `python bench/fanout.py`. A temporary SQLite database and the
file broker unless DATABASE_URL / CELERY_BROKER_URL / REDIS_URL are set (then
it creates and drops a test database there).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CELLS = int(os.environ.get("BENCH_FANOUT_CELLS", "2000"))
LATENCY_MS = 100
CONCURRENCY = 50
AS_MAKE_RUN = os.environ.get("BENCH_AS_MAKE_RUN", "") not in ("", "0", "false")
WORKERS = 1 if AS_MAKE_RUN else int(os.environ.get("BENCH_WORKERS", "2"))
WARM_UP_ROWS = 50
# Each worker as `make run` and docker-compose start one: prefork, two processes (Celery's default on two cores).
POOL = "prefork" if AS_MAKE_RUN else os.environ.get("BENCH_POOL", "prefork")
PROCESSES = int(os.environ.get("WORKER_CONCURRENCY" if AS_MAKE_RUN else "BENCH_CONCURRENCY", "2"))
FAULTS = float(os.environ.get("BENCH_FAULTS", "0") or 0)
TIMEOUT = 2 if FAULTS else 30
RETRIES = 6 if FAULTS else 3


def faults() -> dict:
    """The simulated server's faults for BENCH_FAULTS (none when it is 0)."""
    if not FAULTS:
        return {}
    return {
        "fail_429": FAULTS * 0.4, "retry_after": 1, "fail_500": FAULTS * 0.4,
        "hang": FAULTS * 0.2, "hang_seconds": 5, "seed": 7,
    }  # fmt: skip


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ["STUDIO_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["LOCAL_MODELS"] = "false"
    if os.environ.get("BENCH_WINDOW") and not AS_MAKE_RUN:
        os.environ["EXPERIMENT_WINDOW"] = os.environ["BENCH_WINDOW"]
    import django

    django.setup()


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def start_workers(workdir: Path) -> list[subprocess.Popen]:
    workers = []
    for index in range(WORKERS):
        ready = workdir / f"worker-{index}.ready"
        env = {**os.environ, "DATABASE_URL": database_url(), "STUDIO_WORKER_READY_FILE": str(ready)}
        if AS_MAKE_RUN:  # runstudio's own command lines: this worker, and beat beside it (started below)
            command = [
                sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", "interactive,experiments",
                "--concurrency", str(PROCESSES), "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
            ]  # fmt: skip
        else:
            command = [
                sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", "experiments", "--pool", POOL,
                "--concurrency", str(PROCESSES), "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                "-n", f"bench{index}@%h",
            ]  # fmt: skip
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env))
    if AS_MAKE_RUN:
        beat = [
            sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "WARNING",
            "--schedule", str(workdir / "celerybeat-schedule"),
        ]  # fmt: skip
        workers.append(subprocess.Popen(beat, cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url()}))
    deadline = time.monotonic() + 90
    while not all((workdir / f"worker-{i}.ready").exists() for i in range(WORKERS)):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise SystemExit("the workers did not start")
        time.sleep(0.1)
    return workers


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A process's name and the fields after it in /proc/<pid>/stat (None once it has ended)."""
    try:
        head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
    except OSError:
        return None
    return head.split("(", 1)[1], tail.split()


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _tree(pid: int) -> list[int]:
    """The process and its descendants (a prefork worker's pool children)."""
    children: dict[int, list[int]] = {}
    for child in _pids():
        stat = _stat(child)
        if stat is not None:
            children.setdefault(int(stat[1][1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_ticks(fields: list[str], *, children: bool = False) -> int:
    """utime + stime, and with `children` the reaped children's cutime + cstime too."""
    return sum(int(value) for value in fields[11 : 15 if children else 13])


def cpu_seconds(workers: list[subprocess.Popen]) -> float:
    """CPU time (user + system) the workers' processes have used so far, read from /proc."""
    stats = [_stat(pid) for worker in workers for pid in _tree(worker.pid)]
    return sum(_cpu_ticks(stat[1]) for stat in stats if stat is not None) / os.sysconf("SC_CLK_TCK")


SERVICES = ("postgres", "redis-server")


def service_cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by the machine's PostgreSQL and Redis servers, by name, from /proc:
    the part of a cell's cost that the workers' own CPU time leaves out. A server's reaped children count too
    (a PostgreSQL backend that ended during the run)."""
    totals = dict.fromkeys(SERVICES, 0.0)
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None and stat[0] in totals:
            totals[stat[0]] += _cpu_ticks(stat[1], children=True) / os.sysconf("SC_CLK_TCK")
    return totals


def machine_busy() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


RAW_CLIENT = """
import asyncio, sys, time
import aiohttp

async def main(url, calls, concurrency):
    limit = asyncio.Semaphore(concurrency)
    body = {"model": "echo", "messages": [{"role": "user", "content": "hello there"}]}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one():
            async with limit:
                async with session.post(url + "/chat/completions", json=body) as response:
                    response.raise_for_status()
                    await response.json()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        print(time.perf_counter() - started)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def raw_http(url: str, calls: int) -> float:
    """The floor on this machine: the same calls from a bare aiohttp client in its own process."""
    out = subprocess.run(
        [sys.executable, "-c", RAW_CLIENT, url, str(calls), str(CONCURRENCY)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return float(out.stdout.strip())


def _floor_process(calls: int, concurrency: int, api_base: str, ready, results, go) -> None:
    """One process of the litellm floor: the gateway's async calls with nothing of the studio around them."""
    import django

    django.setup()
    import resource

    from apps.providers import gateway

    target = gateway.Target(
        name="floor", model="openai/echo", api_base=api_base, max_concurrency=concurrency, timeout=TIMEOUT,
        max_retries=RETRIES, own_server=True, limiter_key="floor",
    )  # fmt: skip

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def calls_of_this_process() -> tuple[float, float]:
        async def one(n: int) -> None:
            try:
                await gateway.agenerate(target, messages=[{"role": "user", "content": f"question number {n}"}])
            except gateway.GatewayError:
                pass  # a call that failed for good, as a cell would

        await asyncio.gather(*(one(n) for n in range(concurrency)))  # warm: imports, connection pool
        ready.put(True)
        go.wait()
        started, cpu_before = time.perf_counter(), cpu()  # the warm-up's imports are not counted
        await asyncio.gather(*(one(n) for n in range(calls)))
        return time.perf_counter() - started, cpu() - cpu_before

    results.put(asyncio.run(calls_of_this_process()))


def litellm_floor(url: str) -> tuple[float, float]:
    """What litellm alone allows here: the same calls through the gateway in as many processes as the
    workers have, the endpoint's concurrency split between them; no Celery, database or shared limiter."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = WORKERS * PROCESSES
    share = (CELLS // processes, CONCURRENCY // processes, url, ready, results, go)
    children = [context.Process(target=_floor_process, args=share) for _ in range(processes)]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=120)
    go.set()  # all at once, as the workers run
    measured = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join(timeout=30)
    return max(seconds for seconds, _cpu in measured), sum(cpu for _seconds, cpu in measured)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        workdir = Path(tmp)
        setup_django(workdir)
        from support.scratch import scratch_database  # bench/support/scratch.py

        with scratch_database():
            run(workdir)


def run(workdir: Path) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from apps.accounts.services import project_create
    from apps.datasets.services import dataset_create, dataset_version_create_from_records
    from apps.experiments import services
    from apps.experiments.models import Cell, CellStatus, Experiment
    from apps.prompts import services as prompt_services
    from apps.prompts.content import build_content
    from apps.providers.models import EndpointKind
    from apps.providers.services import endpoint_create
    from apps.providers.testing.server import Behaviour, ModelServer

    server = ModelServer(Behaviour(latency_ms=LATENCY_MS)).start()
    raw_seconds = raw_http(server.url, CELLS)
    server.configure(latency_ms=LATENCY_MS, **faults())
    floor_seconds, floor_cpu = litellm_floor(server.url)
    server.reset()
    server.configure(latency_ms=LATENCY_MS)

    user = get_user_model().objects.create_user("bench")
    project = project_create(name="Bench", slug="bench", creator=user)
    dataset = dataset_create(project=project, name="bench", actor=user)
    rows = [
        {"input": {"question": f"question number {i}"}, "expected": None, "metadata": {}} for i in range(CELLS // 2)
    ]
    version = dataset_version_create_from_records(dataset=dataset, records=rows, message="bench", actor=user)
    prompt = prompt_services.prompt_create(project=project, name="bench", actor=user)
    prompt_version = prompt_services.prompt_version_create(
        prompt=prompt,
        content=build_content(kind="text", template="{{ question }}"),
        parent_number=None,
        message="",
        actor=user,
    )
    endpoint = endpoint_create(
        project=project, actor="bench", name="sim", kind=EndpointKind.SIMULATED, model="openai/echo",
        api_base=server.url, max_concurrency=CONCURRENCY, timeout_seconds=TIMEOUT, max_retries=RETRIES,
    )  # fmt: skip

    def experiment(name: str, dataset_version) -> Experiment:
        return services.experiment_create(
            project=project,
            name=name,
            dataset_version=dataset_version,
            variants=[
                services.VariantSpec("A", prompt_version, endpoint),
                services.VariantSpec("B", prompt_version, endpoint),
            ],
            actor=user,
        )

    def run_to_the_end(experiment: Experiment, samples: list[int]) -> None:
        services.experiment_start(experiment=experiment, actor=user)
        next_check = time.perf_counter()
        while True:
            samples.append(server.in_flight)
            if time.perf_counter() >= next_check:
                if Experiment.objects.get(pk=experiment.pk).is_final:
                    return
                next_check = time.perf_counter() + 0.05
            time.sleep(0.01)

    # Workers live long in a deployment: a small experiment first warms each one up (imports, connection
    # pools), as the hours before a real experiment would; then the timed one.
    warm = dataset_version_create_from_records(dataset=dataset, records=rows[:WARM_UP_ROWS], message="warm", actor=user)
    timed = experiment("bench", version)
    workers = start_workers(workdir)
    try:
        run_to_the_end(experiment("warm-up", warm), [])
        server.reset()
        server.configure(latency_ms=LATENCY_MS, **faults())
        samples: list[int] = []
        cpu_before, machine_before, services_before = cpu_seconds(workers), machine_busy(), service_cpu_seconds()
        started = time.perf_counter()
        run_to_the_end(timed, samples)
        wall = time.perf_counter() - started
        cpu_ms = (cpu_seconds(workers) - cpu_before) * 1000
        machine = machine_busy()
        services_after = service_cpu_seconds()
        services_ms = {name: (services_after[name] - services_before[name]) * 1000 for name in SERVICES}
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit("a worker died during the run: the figures would not be comparable")
        busy = (machine[0] - machine_before[0]) / max(machine[1] - machine_before[1], 1)
    finally:
        stop_workers(workers)
        server.stop()
    done = Cell.objects.filter(experiment=timed, status=CellStatus.DONE).count()
    ideal = CELLS * (LATENCY_MS / 1000) / CONCURRENCY
    print(
        f"cells: {CELLS} ({done} done), latency {LATENCY_MS} ms, concurrency {CONCURRENCY}, "
        f"workers {WORKERS} x {PROCESSES} ({POOL}{', as make run starts it' if AS_MAKE_RUN else ''}), "
        f"window {settings.EXPERIMENT_WINDOW}, faults {FAULTS:.0%}"
    )
    print(f"database: {connection_vendor()}, broker: {settings.CELERY_BROKER_URL.split('://')[0]}")
    print(
        f"wall_seconds: {wall:.2f} (ideal {ideal:.2f}, bare async HTTP {raw_seconds:.2f}, "
        f"litellm alone {floor_seconds:.2f})"
    )
    print(f"fanout_vs_ideal: {wall / ideal:.2f}")
    print(f"fanout_vs_raw_http: {wall / raw_seconds:.2f}")
    print(f"litellm_floor_vs_ideal: {floor_seconds / ideal:.2f}")
    print(f"fanout_vs_litellm_floor: {wall / floor_seconds:.2f}")
    print(f"cells_per_second: {done / wall:.0f}")
    print(f"cpu_ms_per_cell: {cpu_ms / max(done, 1):.2f} (litellm floor: {floor_cpu * 1000 / CELLS:.2f})")
    print(
        "server_cpu_ms_per_cell: "
        + ", ".join(f"{name} {ms / max(done, 1):.2f}" for name, ms in services_ms.items())
        + " (the machine's servers, whoever used them)"
    )
    print(f"mean_calls_in_flight: {sum(samples) / max(len(samples), 1):.1f} of {CONCURRENCY}")
    if os.environ.get("BENCH_TRACE"):
        step = max(len(samples) // 60, 1)
        means = (round(sum(samples[i : i + step]) / step) for i in range(0, len(samples), step))
        print("in flight over time:", " ".join(map(str, means)))
    print(f"machine_cpu_busy: {busy:.0%} of {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")


def connection_vendor() -> str:
    from django.db import connection

    return connection.vendor


if __name__ == "__main__":
    main()
