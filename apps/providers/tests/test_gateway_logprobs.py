"""Token log-probabilities through the gateway: asked for, they come back in one shape from chat and text completion."""

import math

import pytest

from apps.providers import gateway

pytestmark = pytest.mark.django_db


def test_chat_logprobs_come_back_per_token_with_their_alternatives(simulated_endpoint):
    endpoint = simulated_endpoint("Biased", "openai/biased")
    done = gateway.generate(endpoint, messages=[{"role": "user", "content": "She asks for a loan."}],
                            params={"logprobs": True, "top_logprobs": 2})  # fmt: skip
    assert done.output == "DENIED"
    (token,) = done.logprobs
    assert token["token"] == "DENIED" and math.isclose(token["logprob"], math.log(0.9))
    assert [t for t, _ in token["top"]] == ["DENIED", "APPROVED"]
    assert math.isclose(token["top"][1][1], math.log(0.1))


def test_text_completion_logprobs_have_the_same_shape(simulated_endpoint):
    endpoint = simulated_endpoint("Text echo", "openai/echo", mode="completion")
    done = gateway.generate(endpoint, prompt="two words", params={"logprobs": 2})
    assert [t["token"] for t in done.logprobs] == ["two", "words"]
    assert all(t["logprob"] < 0 and len(t["top"]) == 2 and t["top"][0][0] == t["token"] for t in done.logprobs)


def test_without_asking_there_are_none(simulated_endpoint):
    done = gateway.generate(simulated_endpoint(), messages=[{"role": "user", "content": "hi"}])
    assert done.logprobs is None
