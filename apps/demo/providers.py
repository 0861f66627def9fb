"""Demo data: the local models as the demo's endpoints (added to an existing demo too).

The chat model always, and the completion model while LOCAL_MODEL_COMPLETION turns it on. No simulated
endpoint is seeded: the test server runs only inside tests and benchmarks, so it would point at nothing.
"""

from __future__ import annotations

from apps.accounts.models import Project
from apps.providers import local_models
from apps.providers.models import EndpointKind, EndpointMode, ModelEndpoint
from apps.providers.services import endpoint_create, local_endpoint_ensure


def seed_demo_endpoints(*, project: Project, actor) -> None:
    """Idempotent: a local chat endpoint is made only when there is none; the completion one is kept current."""
    local_chat = ModelEndpoint.objects.filter(project=project, kind=EndpointKind.LOCAL, mode=EndpointMode.CHAT)
    if not local_chat.exists():
        endpoint_create(
            project=project,
            actor="seed_demo",
            name=local_models.DEFAULT_MODEL.endpoint_name,
            kind=EndpointKind.LOCAL,
            mode=local_models.DEFAULT_MODEL.mode,
            model=f"openai/{local_models.model_alias()}",
            api_base=local_models.api_base(),
            timeout_seconds=180,
            max_retries=1,
            max_concurrency=1,
            price_input_per_mtok=0,
            price_output_per_mtok=0,
        )
    completion = local_models.completion_model()
    if completion is not None:
        local_endpoint_ensure(project=project, spec=completion, actor="seed_demo")
