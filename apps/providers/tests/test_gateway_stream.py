"""Streaming through the gateway against the simulated server, through real litellm."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from decimal import Decimal

import pytest

from apps.providers import gateway
from apps.providers.gateway import ErrorKind, GatewayError, StreamedCompletion, StreamInterrupted, Target

KEY = "sk-simulated-stream-key-0042"


@pytest.fixture(autouse=True)
def fast_backoff(settings):
    settings.GATEWAY_RETRY_BASE_SECONDS = 0.02
    settings.GATEWAY_RETRY_MAX_SECONDS = 0.2


def target(server, model="openai/echo", **fields) -> Target:
    fields.setdefault("timeout", 5)
    fields.setdefault("max_retries", 3)
    return Target(name="sim", model=model, api_base=server.url, api_key=KEY, **fields)


def say(text: str) -> list[dict]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def collect(items) -> tuple[list[str], StreamedCompletion]:
    items = list(items)
    *deltas, final = items
    assert all(isinstance(d, str) for d in deltas) and isinstance(final, StreamedCompletion)
    return deltas, final


def run_async(coroutine):
    """asyncio.run in a fresh thread: Playwright's sync API may already run a loop in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def acollect(iterator) -> list:
    return [item async for item in iterator]


def test_it_yields_deltas_in_order_that_join_to_the_final_completion(sim_server):
    endpoint = target(sim_server, "openai/upper", price_input_per_mtok=Decimal("1.5"), price_output_per_mtok=Decimal(4))

    deltas, final = collect(gateway.stream(endpoint, messages=say("one two three four five")))

    assert deltas == ["ONE", " TWO", " THREE", " FOUR", " FIVE"]
    assert "".join(deltas) == final.output == "ONE TWO THREE FOUR FIVE"
    assert final.finish_reason == "stop"
    # The provider's usage (system: 2 words + 1, user: 5 + 1), not an estimate.
    assert (final.tokens_in, final.tokens_out, final.tokens_estimated) == (9, 5, False)
    assert final.cost == (Decimal(9) * Decimal("1.5") + Decimal(5) * Decimal(4)) / Decimal(1_000_000)
    assert final.request_id.startswith("req-sim-") and final.attempts == 1
    assert 0 <= final.time_to_first_token_ms <= final.latency_ms <= final.total_ms
    sent = sim_server.requests("/chat/completions")[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_it_hands_over_each_delta_as_it_arrives_not_at_the_end(sim_server):
    sim_server.configure(stream_delay_ms=150)
    arrivals, started = [], time.monotonic()
    for item in gateway.stream(target(sim_server), messages=say("a b c d e")):
        arrivals.append(time.monotonic() - started)
        final = item
    assert arrivals[-1] - arrivals[0] >= 0.5  # five words, 150 ms apart
    assert final.time_to_first_token_ms < final.latency_ms - 400


def test_it_streams_text_completions(sim_server):
    deltas, final = collect(gateway.stream(target(sim_server, "openai/reverse", mode="completion"), prompt="x y z"))
    assert "".join(deltas) == final.output == "z y x"
    assert (final.tokens_in, final.tokens_out) == (3, 3)
    assert sim_server.requests()[-1].path == "/v1/completions"


def test_it_counts_the_tokens_with_the_tokenizer_when_the_provider_sends_no_usage(sim_server):
    sim_server.configure(stream_usage=False)
    endpoint = target(sim_server, price_input_per_mtok=Decimal(1), price_output_per_mtok=Decimal(1))

    _deltas, final = collect(gateway.stream(endpoint, messages=say("count these words please")))

    # Not the simulated server's word count (6 + 4): the model's tokenizer, through litellm.
    assert final.tokens_in == gateway.count_tokens(endpoint, messages=say("count these words please"))
    assert final.tokens_out == gateway.count_tokens(endpoint, prompt="count these words please")
    assert (final.tokens_in, final.tokens_out) != (8, 4)
    assert final.cost == Decimal(final.tokens_in + final.tokens_out) / Decimal(1_000_000)


def test_it_retries_a_rate_limit_before_the_first_token(sim_server):
    deltas, final = collect(
        gateway.stream(target(sim_server), messages=say("hello you [[fail:429 x2]] [[retry-after:0]]"))
    )
    assert "".join(deltas) == final.output == "hello you"
    assert final.attempts == 3
    assert [s.status for s in sim_server.requests()] == [429, 429, 200]


def test_it_retries_a_stream_that_breaks_before_its_first_token(sim_server):
    endpoint = target(sim_server, max_retries=1)
    with pytest.raises(GatewayError) as error:
        list(gateway.stream(endpoint, messages=say("hello [[stream-drop:0]]")))
    assert not isinstance(error.value, StreamInterrupted)
    assert error.value.kind == ErrorKind.PROVIDER_ERROR and error.value.attempts == 2
    assert len(sim_server.requests()) == 2


def test_it_gives_up_at_once_on_a_refused_key_and_yields_nothing(sim_server):
    sim_server.configure(api_key="sk-the-only-key-that-works-000")
    received = []
    with pytest.raises(GatewayError) as error:
        for item in gateway.stream(target(sim_server), messages=say("hi")):
            received.append(item)
    assert received == []
    assert error.value.kind == ErrorKind.AUTH and error.value.attempts == 1
    assert KEY not in error.value.message


@pytest.mark.parametrize(
    ("directive", "kind", "words"),
    [
        ("[[stream-fail:3]]", ErrorKind.PROVIDER_ERROR, "failed in the middle of its answer"),
        ("[[stream-drop:3]]", ErrorKind.PROVIDER_ERROR, "closed the connection in the middle of its answer"),
    ],
)
def test_it_keeps_the_partial_output_and_names_the_error_when_the_stream_breaks(sim_server, directive, kind, words):
    received = []
    with pytest.raises(StreamInterrupted) as error:
        for item in gateway.stream(target(sim_server), messages=say(f"one two three four five {directive}")):
            received.append(item)

    assert received == ["one", " two", " three"]
    interrupted = error.value
    assert interrupted.kind == kind and words in interrupted.message
    assert "(after 13 characters)" in interrupted.message and "the output so far is kept" in interrupted.message
    assert interrupted.partial.output == "one two three"
    assert interrupted.partial.tokens_out == gateway.count_tokens(target(sim_server), prompt="one two three")
    assert interrupted.partial.tokens_estimated is True
    assert interrupted.partial.request_id.startswith("req-sim-")
    # Text was already shown: a broken stream is never sent again.
    assert len(sim_server.requests()) == 1 and interrupted.attempts == 1


def test_it_names_the_server_error_sent_in_the_middle_of_a_stream(sim_server):
    with pytest.raises(StreamInterrupted) as error:
        list(gateway.stream(target(sim_server), messages=say("a b c [[stream-fail:1]]")))
    assert "The simulated server failed mid-stream" in error.value.message


def test_it_times_out_a_stream_that_stalls_and_keeps_what_came(sim_server):
    sim_server.configure(hang_seconds=10)
    started = time.monotonic()
    with pytest.raises(StreamInterrupted) as error:
        list(gateway.stream(target(sim_server, timeout=1), messages=say("a b c d [[stream-stall:2]]")))
    assert time.monotonic() - started < 5
    assert error.value.kind == ErrorKind.TIMEOUT
    assert "sent nothing for 1 seconds in the middle of its answer" in error.value.message
    assert error.value.partial.output == "a b"


def test_it_holds_the_endpoints_concurrency_slot_for_the_whole_stream(sim_server):
    sim_server.configure(stream_delay_ms=60)
    endpoint = target(sim_server, max_concurrency=1)

    def one(text):
        return collect(gateway.stream(endpoint, messages=say(text)))[1].output

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        outputs = list(pool.map(one, ["a b c d", "e f g h", "i j k l"]))
    assert outputs == ["a b c d", "e f g h", "i j k l"]
    assert sim_server.peak_in_flight == 1


def test_it_frees_the_slot_when_the_caller_stops_reading(sim_server):
    sim_server.configure(stream_delay_ms=50)
    endpoint = target(sim_server, max_concurrency=1, timeout=2)
    abandoned = gateway.stream(endpoint, messages=say("a b c d e f g h i j"))
    assert next(abandoned) == "a"
    abandoned.close()
    started = time.monotonic()
    _deltas, final = collect(gateway.stream(endpoint, messages=say("next one")))
    assert final.output == "next one" and time.monotonic() - started < 2


def test_it_streams_asynchronously_like_the_sync_call(sim_server):
    endpoint = target(sim_server, "openai/upper")
    *deltas, final = run_async(acollect(gateway.astream(endpoint, messages=say("async words here"))))
    assert deltas == ["ASYNC", " WORDS", " HERE"]
    assert final.output == "ASYNC WORDS HERE" and (final.tokens_in, final.tokens_out) == (7, 3)
    assert final.time_to_first_token_ms is not None and final.request_id.startswith("req-sim-")


def test_it_retries_and_interrupts_asynchronously_by_the_same_rules(sim_server):
    endpoint = target(sim_server)
    *_deltas, final = run_async(acollect(gateway.astream(endpoint, messages=say("ok [[fail:500 x1]]"))))
    assert final.output == "ok" and final.attempts == 2

    async def broken():
        received = []
        try:
            async for item in gateway.astream(endpoint, messages=say("one two three [[stream-drop:2]]")):
                received.append(item)
        except StreamInterrupted as exc:
            return received, exc
        raise AssertionError("the stream did not break")

    received, error = run_async(broken())
    assert received == ["one", " two"] and error.partial.output == "one two"
    assert "closed the connection" in error.message

    async def failing():
        try:
            await acollect(gateway.astream(endpoint, messages=say("one two [[stream-fail:1]]")))
        except StreamInterrupted as exc:
            return exc

    error = run_async(failing())
    assert error.message == (
        "'sim' failed in the middle of its answer (after 3 characters): The simulated server failed mid-stream; "
        "the output so far is kept."
    )


def test_it_never_logs_the_key_of_a_stream(sim_server, caplog):
    sim_server.configure(api_key="sk-the-only-key-that-works-000")
    endpoint = target(sim_server, max_retries=0)
    gateway._remember_secret(KEY)
    with caplog.at_level(logging.DEBUG), pytest.raises(GatewayError):
        list(gateway.stream(endpoint, messages=say("hi")))  # refused: the wrong key
    assert caplog.records and KEY not in caplog.text


def test_it_refuses_a_stream_whose_prompt_holds_a_key_before_sending_it(sim_server):
    with pytest.raises(gateway.SecretInPrompt, match="looks like a provider API key"):
        list(gateway.stream(target(sim_server), messages=say(f"hi {KEY}")))
    assert not sim_server.requests("/chat/completions")


def test_it_knows_which_endpoints_stream(sim_server):
    assert gateway.supports_streaming(target(sim_server))
    assert gateway.supports_streaming(target(sim_server, mode="completion"))
    assert not gateway.supports_streaming(target(sim_server, default_params={"stream": False}))
    assert not gateway.supports_streaming(target(sim_server, "nonsense-provider/model"))
