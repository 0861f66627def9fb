"""The model gateway: every model call of the studio goes through here, and only here is litellm imported.

Each call has an explicit timeout, retries rate limits, timeouts and server
errors with exponential backoff and jitter (honouring Retry-After), respects
the endpoint's concurrency and requests-per-minute limits (per process), maps
every failure to a small taxonomy with a message a user understands, and
returns the output with its finish reason, tokens, cost, latency and the
provider's request id. The API key is decrypted only here, only for the call,
and is redacted from every log record of the process.

litellm is imported lazily (it takes seconds) and configured for offline use:
the bundled price map (`LITELLM_LOCAL_MODEL_COST_MAP=True`), no telemetry.

The gateway is the single door: for every call (generate, agenerate, stream, astream, embed, and the
LLM judges' calls, which are generate calls) it refuses a prompt holding a provider key, refuses a
managed local model that is not serving yet, and takes the endpoint's slot and minute budget shared
by every process of the studio (`limits`), so no caller can forget them.

The package's modules: `calls` (targets, requests and the public calls), `streaming`, `errors` (the
taxonomy and the retry rules), `guard` (the checks before a call), `limits` (the shared slots) and
`redaction`; `sdk` imports and configures litellm.
Callers import the names below from `apps.providers.gateway`.
"""

from apps.providers.gateway.calls import (
    Completion,
    Embeddings,
    Target,
    achat,
    acomplete,
    aembed,
    agenerate,
    chat,
    check_connection,
    complete,
    count_tokens,
    describe_request,
    embed,
    estimate_cost,
    generate,
    merge_params,
    supports_images,
)
from apps.providers.gateway.errors import RETRYABLE, ErrorKind, GatewayError, backoff_delay, classify
from apps.providers.gateway.guard import SecretInPrompt, refuse_secrets
from apps.providers.gateway.limits import CallNotStarted
from apps.providers.gateway.redaction import _remember_secret, redact
from apps.providers.gateway.sdk import _litellm, warm_up
from apps.providers.gateway.streaming import StreamedCompletion, StreamInterrupted, astream, stream, supports_streaming

__all__ = [
    "RETRYABLE",
    "CallNotStarted",
    "SecretInPrompt",
    "refuse_secrets",
    "Completion",
    "Embeddings",
    "ErrorKind",
    "GatewayError",
    "StreamInterrupted",
    "StreamedCompletion",
    "Target",
    "_litellm",
    "_remember_secret",
    "achat",
    "acomplete",
    "aembed",
    "agenerate",
    "astream",
    "backoff_delay",
    "chat",
    "check_connection",
    "classify",
    "complete",
    "count_tokens",
    "describe_request",
    "embed",
    "estimate_cost",
    "generate",
    "merge_params",
    "redact",
    "stream",
    "supports_images",
    "supports_streaming",
    "warm_up",
]
