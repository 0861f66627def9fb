"""litellm, configured once for offline use and imported lazily (it takes seconds)."""

from __future__ import annotations

import functools
import os


@functools.cache
def _litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the price map from the internet
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import warnings

    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.drop_params = True  # a parameter a provider does not take is dropped, not an error
    litellm.turn_off_message_logging = True
    litellm.num_retries = 0  # the gateway retries, with its own rules
    warnings.filterwarnings("ignore", message=".*Pydantic serializer warnings.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="pydantic.*")
    return litellm


def warm_up() -> None:
    """Import litellm ahead of the first call (a worker does this in the background at start)."""
    _litellm()
