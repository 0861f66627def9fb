"""The gateway's shared limits and checks: every call takes the endpoint's shared slot and runs the checks.

"Another process" holding a slot is a second limiter backend made like the one every process makes
(its own lock files on the embedded default, the same Redis or database otherwise).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from apps.providers import gateway
from apps.providers.gateway import limits
from apps.providers.tests.test_gateway import run_async

pytestmark = pytest.mark.django_db(transaction=True)  # the limiter's own threads must see the endpoints


@pytest.fixture(autouse=True)
def fresh_limiter():
    limits.reset_limiter()
    yield
    limits.reset_limiter()


def hold_slot_elsewhere(endpoint, seconds: float) -> tuple[threading.Thread, list[float]]:
    """Take the endpoint's only slot as another process would, and give it back after `seconds`."""
    gateway.warm_up()  # importing litellm takes seconds on a busy machine: not while the slot is held
    other = limits.make_backend()
    assert other.try_acquire(endpoint.pk, endpoint.max_concurrency, "another-process")
    released: list[float] = []

    def give_back():
        time.sleep(seconds)
        released.append(time.time())
        other.release(endpoint.pk, "another-process")
        other.close()

    thread = threading.Thread(target=give_back)
    thread.start()
    return thread, released


# --- the limiter's backends ----------------------------------------------------------------------------


def _slots_scenario(backend, key):
    taken = [backend.try_acquire(key, 2, "a"), backend.try_acquire(key, 2, "b"), backend.try_acquire(key, 2, "c")]
    backend.release(key, "a")
    return (*taken, backend.try_acquire(key, 2, "d"))


def test_the_file_backend_hands_out_at_most_its_slots(tmp_path):
    assert _slots_scenario(limits.FileBackend(tmp_path), 7) == (True, True, False, True)


def test_file_backends_share_slots_like_separate_processes(tmp_path):
    """Two backends open their own files, as two processes would: together they never exceed the limit."""
    other, mine = limits.FileBackend(tmp_path), limits.FileBackend(tmp_path)
    taken = [other.try_acquire(3, 3, "o1"), other.try_acquire(3, 3, "o2")]
    taken += [mine.try_acquire(3, 3, "m1"), mine.try_acquire(3, 3, "m2")]
    other.release(3, "o1")
    taken.append(mine.try_acquire(3, 3, "m3"))
    other.close()  # a process that dies frees what it held
    taken += [mine.try_acquire(3, 3, "m4"), mine.try_acquire(3, 3, "m5")]
    mine.close()
    assert taken == [True, True, True, False, True, True, False]


def test_file_backends_share_the_minute_budget(tmp_path):
    one, two = limits.FileBackend(tmp_path), limits.FileBackend(tmp_path)
    assert [one.try_rate(5, 3), two.try_rate(5, 3), one.try_rate(5, 3), two.try_rate(5, 3)] == [True] * 3 + [False]


def test_the_database_backend_hands_out_at_most_its_slots(simulated_endpoint):
    endpoint = simulated_endpoint()
    assert _slots_scenario(limits.DatabaseBackend(), endpoint.pk) == (True, True, False, True)
    backend = limits.DatabaseBackend()
    assert run_async(backend.atry_rate(endpoint.pk, 1)) is True
    assert backend.try_rate(endpoint.pk, 1) is False


# --- direct calls ------------------------------------------------------------------------------------


def test_a_direct_gateway_call_gives_up_when_the_slot_never_frees(simulated_endpoint, sim_server):
    endpoint = simulated_endpoint(max_concurrency=1, timeout_seconds=1)
    holder, _released = hold_slot_elsewhere(endpoint, 3.0)
    with pytest.raises(gateway.GatewayError, match="is busy: no free slot"):
        gateway.chat(endpoint, [{"role": "user", "content": "hi"}])
    holder.join()
    assert not sim_server.requests()


def test_a_key_in_an_embedding_or_a_judge_prompt_is_refused_too(simulated_endpoint, sim_server):
    endpoint = simulated_endpoint(api_key="correct-horse-battery-staple-42")
    with pytest.raises(gateway.SecretInPrompt):
        gateway.embed(endpoint, ["fine", "AKIAABCDEFGHIJKLMNOP"])
    with pytest.raises(gateway.SecretInPrompt, match="'Simulated echo'"):
        run_async(
            gateway.achat(
                gateway.Target.from_endpoint(endpoint),
                [{"role": "user", "content": "x correct-horse-battery-staple-42"}],
            )
        )
    assert not sim_server.requests()


# --- stopping: a budget spent while a call waits ---------------------------------------------------------


def test_a_call_that_stopped_while_it_waited_does_not_start_when_the_slot_frees(simulated_endpoint, sim_server):
    """The caller stops just as the slot frees (the call that held it spent the budget): the waiting call
    gets the slot but must not start. Through the async door (experiments) and the sync one."""
    endpoint = simulated_endpoint(max_concurrency=1)
    target = gateway.Target.from_endpoint(endpoint)
    for call in (
        lambda stopped: run_async(
            gateway.agenerate(target, messages=[{"role": "user", "content": "hi"}], stopped=stopped)
        ),
        lambda stopped: gateway.chat(endpoint, [{"role": "user", "content": "hi"}], stopped=stopped),
    ):
        holder, released = hold_slot_elsewhere(endpoint, 0.5)  # marks `released` just before it gives the slot back
        with pytest.raises(gateway.CallNotStarted):
            call(lambda released=released: bool(released))
        holder.join()
    assert not sim_server.requests()


def test_settle_sees_the_completion_before_the_slot_is_free(simulated_endpoint, sim_server):
    """What a budget records in `settle` is counted before a waiting call can take the only slot."""
    endpoint = simulated_endpoint(max_concurrency=1, price_input_per_mtok=Decimal("100000"))
    target = gateway.Target.from_endpoint(endpoint)
    other = limits.make_backend()
    seen = []

    def settle(completion):
        seen.append((completion.cost, other.try_acquire(endpoint.pk, 1, "while-settling")))

    completion = run_async(gateway.agenerate(target, messages=[{"role": "user", "content": "hi"}], settle=settle))
    assert seen == [(completion.cost, False)] and completion.cost > 0  # the slot was still held
    assert other.try_acquire(endpoint.pk, 1, "after")  # and free once the call returned
    other.release(endpoint.pk, "after")
    other.close()
