"""The gateway against the simulated server, through litellm, like a real provider."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from decimal import Decimal

import pytest

from apps.providers import gateway
from apps.providers.gateway import ErrorKind, GatewayError, Target


@pytest.fixture(autouse=True)
def fast_backoff(settings):
    settings.GATEWAY_RETRY_BASE_SECONDS = 0.02
    settings.GATEWAY_RETRY_MAX_SECONDS = 0.2


@pytest.fixture(params=[False, True], ids=["openai-sdk", "own-server"])
def own(request):
    """Both chat routes: the openai SDK (a provider's endpoint) and litellm's generic OpenAI-compatible
    route that the studio uses for its own simulated and local servers (Target.own_server)."""
    return request.param


def target(server, model="openai/echo", **fields) -> Target:
    fields.setdefault("timeout", 5)
    fields.setdefault("max_retries", 3)
    return Target(name="sim", model=model, api_base=server.url, api_key="sk-simulated-key-0001", **fields)


def run_async(coroutine):
    """asyncio.run in a fresh thread: Playwright's sync API may already run a loop in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def say(text: str) -> list[dict]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_it_returns_output_finish_reason_tokens_cost_latency_and_request_id(sim_server, own):
    sim_server.configure(latency_ms=50)
    endpoint = target(
        sim_server,
        "openai/upper",
        own_server=own,
        price_input_per_mtok=Decimal("1.5"),
        price_output_per_mtok=Decimal("4"),
    )

    result = gateway.chat(endpoint, say("hello there world"))

    assert result.output == "HELLO THERE WORLD"
    assert result.finish_reason == "stop"
    # system: 2 words + 1, user: 3 words + 1 (the simulated server's token rule)
    assert (result.tokens_in, result.tokens_out) == (7, 3)
    assert result.cost == (Decimal(7) * Decimal("1.5") + Decimal(3) * Decimal(4)) / Decimal(1_000_000)
    assert 50 <= result.latency_ms < 3000
    assert result.request_id.startswith("req-sim-")
    assert result.attempts == 1
    assert result.request["messages"] == say("hello there world")
    sent = sim_server.requests("/chat/completions")[-1]
    assert sent.body["messages"] == say("hello there world")


def test_it_prices_with_litellms_map_when_the_endpoint_has_no_prices(sim_server):
    result = gateway.chat(target(sim_server, "openai/gpt-4o-mini"), say("one two three four"))

    import litellm

    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o-mini", prompt_tokens=result.tokens_in, completion_tokens=result.tokens_out
    )
    assert result.cost == Decimal(str(prompt_cost)) + Decimal(str(completion_cost))
    assert result.cost > 0


def test_it_reports_an_unknown_cost_for_a_model_missing_from_the_price_map(sim_server):
    assert gateway.chat(target(sim_server, "openai/echo"), say("hi")).cost is None


def test_it_endpoint_prices_override_the_price_map(sim_server):
    endpoint = target(sim_server, "openai/gpt-4o-mini", price_input_per_mtok=Decimal(0), price_output_per_mtok=None)
    assert gateway.chat(endpoint, say("hi")).cost == Decimal(0)


def test_it_cuts_at_max_tokens_with_finish_reason_length(sim_server):
    result = gateway.chat(target(sim_server), say("a b c d e f"), params={"max_tokens": 2})
    assert (result.output, result.finish_reason, result.tokens_out) == ("a b", "length", 2)


def test_it_does_text_completions_on_a_completion_endpoint(sim_server):
    result = gateway.complete(target(sim_server, "openai/reverse", mode="completion"), "once upon a time")
    assert result.output == "time a upon once"
    assert sim_server.requests()[-1].path == "/v1/completions"
    assert result.tokens_in == 4


def test_it_sends_a_text_prompt_to_a_chat_endpoint_as_one_user_message(sim_server):
    result = gateway.generate(target(sim_server), prompt="just this")
    assert result.output == "just this"
    assert sim_server.requests()[-1].body["messages"] == [{"role": "user", "content": "just this"}]


def test_it_refuses_chat_messages_on_a_completion_endpoint(sim_server):
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server, mode="completion"), say("hi"))
    assert error.value.kind == ErrorKind.BAD_REQUEST
    assert "text completions" in error.value.message
    assert sim_server.requests() == []


def test_it_embeds_deterministically(sim_server):
    result = gateway.embed(target(sim_server), ["red apple", "red apple", "blue sky"])
    first, same, other = result.vectors
    assert first == same and first != other
    assert len(first) == 64
    assert result.tokens_in == 6


def test_it_retries_rate_limits_and_succeeds(sim_server, own):
    result = gateway.chat(target(sim_server, own_server=own), say("hello [[fail:429 x2]] [[retry-after:0]]"))
    assert result.output == "hello"
    assert result.attempts == 3
    assert [s.status for s in sim_server.requests()] == [429, 429, 200]


def test_it_honours_retry_after(sim_server, own):
    started = time.monotonic()
    result = gateway.chat(target(sim_server, own_server=own), say("hello [[fail:429 x1]] [[retry-after:1]]"))
    assert result.attempts == 2
    assert time.monotonic() - started >= 1.0  # the backoff alone would wait about 0.02 s


def test_it_gives_up_on_a_rate_limit_storm_with_a_plain_message(sim_server, own):
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server, own_server=own, max_retries=2), say("hello [[fail:429]] [[retry-after:0]]"))
    assert error.value.kind == ErrorKind.RATE_LIMIT
    assert error.value.attempts == 3
    assert "rate limited" in error.value.message and "tried 3 times" in error.value.message
    assert len(sim_server.requests()) == 3


def test_it_does_not_wait_when_retry_after_is_unreasonably_long(sim_server, settings):
    settings.GATEWAY_RETRY_AFTER_MAX_SECONDS = 2
    started = time.monotonic()
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server), say("hello [[fail:429]] [[retry-after:30]]"))
    assert error.value.kind == ErrorKind.RATE_LIMIT
    assert error.value.attempts == 1
    assert time.monotonic() - started < 2


def test_it_retries_server_errors(sim_server, own):
    result = gateway.chat(target(sim_server, own_server=own), say("hello [[fail:500 x1]]"))
    assert result.attempts == 2
    assert [s.status for s in sim_server.requests()] == [500, 200]


def test_it_times_out_a_hanging_server_and_retries_then_gives_up(sim_server, own):
    started = time.monotonic()
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server, own_server=own, timeout=0.5, max_retries=1), say("hello [[hang]]"))
    assert error.value.kind == ErrorKind.TIMEOUT
    assert error.value.attempts == 2
    assert "did not answer within 0.5 seconds" in error.value.message
    assert time.monotonic() - started < 6


def test_it_does_not_retry_a_wrong_key(sim_server, own):
    sim_server.configure(api_key="sk-the-right-key-123456")
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server, own_server=own), say("hello"))
    assert error.value.kind == ErrorKind.AUTH
    assert error.value.attempts == 1
    assert "refused the API key" in error.value.message
    assert "sk-simulated-key-0001" not in error.value.message
    assert len(sim_server.requests()) == 1


def test_it_does_not_retry_a_bad_request(sim_server, own):
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server, own_server=own), say("hello [[fail:400]]"))
    assert error.value.kind == ErrorKind.BAD_REQUEST
    assert error.value.attempts == 1


def test_it_names_a_context_that_is_too_long(sim_server, own):
    sim_server.configure(context_tokens=10)
    with pytest.raises(GatewayError) as error:
        gateway.chat(target(sim_server, own_server=own), say("word " * 50))
    assert error.value.kind == ErrorKind.CONTEXT_TOO_LONG
    assert "context window" in error.value.message and "maximum context length is 10" in error.value.message
    assert error.value.attempts == 1


def test_it_explains_an_unreachable_base_url():
    endpoint = Target(name="nowhere", model="openai/echo", api_base="http://127.0.0.1:9/v1", timeout=3)
    with pytest.raises(GatewayError) as error:
        gateway.chat(endpoint, say("hello"), max_retries=0)
    assert error.value.kind == ErrorKind.PROVIDER_ERROR
    assert "Could not reach http://127.0.0.1:9/v1" in error.value.message


def test_it_survives_a_share_of_random_failures(sim_server):
    sim_server.configure(fail_429=0.3, fail_500=0.2, retry_after=0, seed=7)
    results = [gateway.chat(target(sim_server, max_retries=8), say(f"call {i}")) for i in range(15)]
    assert [r.output for r in results] == [f"call {i}" for i in range(15)]
    assert sum(r.attempts for r in results) > 15
    assert {s.status for s in sim_server.requests()} >= {200, 429, 500}


def test_it_runs_async_calls_concurrently_within_the_endpoint_limit(sim_server, own):
    sim_server.configure(latency_ms=200)

    async def many(limit: int, count: int):
        endpoint = target(sim_server, own_server=own, max_concurrency=limit, limiter_key=f"async-{limit}-{own}")
        started = time.monotonic()
        results = await asyncio.gather(*(gateway.achat(endpoint, say(f"n{i}")) for i in range(count)))
        return results, time.monotonic() - started

    results, elapsed = run_async(many(limit=10, count=10))
    assert [r.output for r in results] == [f"n{i}" for i in range(10)]
    assert elapsed < 1.5  # ten 200 ms calls at once, not one after another

    _results, elapsed = run_async(many(limit=2, count=6))
    assert elapsed >= 0.6  # at most two at a time: three rounds of 200 ms


def test_it_embeds_and_completes_async(sim_server):
    async def both():
        endpoint = target(sim_server, "openai/upper", mode="completion")
        return await gateway.acomplete(endpoint, "abc"), await gateway.aembed(target(sim_server), ["x"])

    completion, embeddings = run_async(both())
    assert completion.output == "ABC"
    assert len(embeddings.vectors) == 1


def test_it_never_takes_keys_or_urls_from_parameters():
    merged = gateway.merge_params(
        {"temperature": 0.1, "api_key": "sk-from-defaults"},
        {"max_tokens": 5, "extra": {"seed": 3, "api_base": "http://evil", "API_KEY": "x"}, "model": "other"},
    )
    assert merged == {"temperature": 0.1, "max_tokens": 5, "seed": 3}


def test_it_backs_off_exponentially_with_jitter(settings):
    settings.GATEWAY_RETRY_BASE_SECONDS = 1
    settings.GATEWAY_RETRY_MAX_SECONDS = 8
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (6, 8)):
        delays = {gateway.backoff_delay(attempt, None) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert 3 <= gateway.backoff_delay(1, 3) <= 4
