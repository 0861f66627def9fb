"""A garbage-collector pause during a render is not the template's time: a trivial template is not refused for it.

A full collection in a large process (a busy web worker, a long test run) pauses every thread; CI once refused
the demo's three-line system message as "took longer than the time limit (200 ms)" during one.
"""

from __future__ import annotations

import gc
import time

import pytest
from prompt_studio import sandbox

PAUSE = 0.4  # twice the default time limit


class _CollectsOnOutput:
    """A value whose text representation runs a full collection, as an allocation would at the wrong moment."""

    def __str__(self) -> str:
        gc.collect()
        return "Acme"


class _SleepsOnOutput:
    """A value whose text representation blocks without the collector: that time is the render's."""

    def __str__(self) -> str:
        time.sleep(PAUSE)
        return "Acme"


@pytest.fixture
def slow_collector():
    def pause(phase: str, info: dict) -> None:
        if phase == "start":
            time.sleep(PAUSE)

    gc.callbacks.append(pause)
    try:
        yield
    finally:
        gc.callbacks.remove(pause)


@pytest.fixture
def in_process():
    """Only the in-process deadline, the one the garbage collector could trip (a worker is killed by the wall clock)."""
    enabled = sandbox._isolation.enabled
    sandbox.configure(isolation=False)
    try:
        yield
    finally:
        sandbox.configure(isolation=enabled)


def test_a_collector_pause_in_the_middle_of_a_render_does_not_count(slow_collector, in_process):
    started = time.monotonic()
    text = sandbox.render("Support agent for {{ product }}.", {"product": _CollectsOnOutput()}, timeout=0.2)
    assert text == "Support agent for Acme."
    assert time.monotonic() - started >= PAUSE  # the pause did happen, inside the render


def test_the_same_wait_outside_the_collector_is_refused(in_process):
    with pytest.raises(sandbox.TemplateProblem, match="time limit"):
        sandbox.render("Support agent for {{ product }}.{{ product }}", {"product": _SleepsOnOutput()}, timeout=0.2)


class _YieldsOnOutput:
    """A value whose text representation gives the GIL away: the thread then waits while another one runs."""

    def __str__(self) -> str:
        time.sleep(0)
        return "Acme"


@pytest.fixture
def busy_thread():
    """Another thread of the process that holds the GIL as long as the interpreter lets it (an experiment worker's
    calls loop), with a long switch interval, so a thread that gives the GIL away waits long for it."""
    import sys
    import threading

    stop = threading.Event()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(PAUSE / 4)
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)], daemon=True)
    spinner.start()
    try:
        yield
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(interval)


@pytest.fixture
def no_render_pool():
    pool = sandbox._the_pool
    sandbox._the_pool = None
    try:
        yield
    finally:
        started, sandbox._the_pool = sandbox._the_pool, pool
        for worker in started.idle if started else []:
            worker.stop()


def test_waiting_for_the_gil_does_not_send_a_plain_render_to_a_worker(busy_thread, no_render_pool):
    # The quick in-process try of a plain template counts the thread's own CPU time: the 100 ms it waits for
    # the GIL here would otherwise pass IN_PROCESS_SECONDS and start the render processes for one variable.
    text = sandbox.render("Support agent for {{ product }}.", {"product": _YieldsOnOutput()}, timeout=2)
    assert text == "Support agent for Acme."
    assert sandbox._the_pool is None
