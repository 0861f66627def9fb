"""Paraphrase through a model endpoint via the gateway, for the datasets' perturbations (registered at start-up)."""

from __future__ import annotations

from collections.abc import Callable

from apps.datasets.counterfactual import LexiconError
from apps.providers.models import EndpointKind, ModelEndpoint

INSTRUCTION = (
    "Rewrite the following text in different words. Keep its meaning, its language, every name and number, "
    "and roughly its length. Answer with the rewritten text only."
)


def _endpoint(project, endpoint_id: int | None) -> ModelEndpoint:
    endpoints = ModelEndpoint.objects.filter(project=project, is_active=True)
    if endpoint_id is not None:
        endpoint = endpoints.filter(pk=endpoint_id).first()
        if endpoint is None:
            raise LexiconError(f"No active model endpoint {endpoint_id} in this project.")
        return endpoint
    endpoint = endpoints.filter(kind=EndpointKind.LOCAL).order_by("pk").first()
    if endpoint is None:
        raise LexiconError("Paraphrase uses the project's local model by default, and this project has none.")
    return endpoint


def paraphraser(project, endpoint_id: int | None) -> Callable[[str], str]:
    from apps.providers.gateway import generate
    from apps.providers.gateway.errors import GatewayError

    endpoint = _endpoint(project, endpoint_id)

    def paraphrase(text: str) -> str:
        try:
            messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": text}]
            completion = generate(endpoint, messages=messages, params={"temperature": 0.7})
        except GatewayError as exc:
            raise LexiconError(f"Paraphrase through {endpoint.name} failed: {exc}") from exc
        return (completion.output or "").strip() or text

    return paraphrase
