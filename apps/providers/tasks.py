from __future__ import annotations

import threading

from celery import shared_task
from celery.signals import worker_process_init

from apps.providers import services


@shared_task(name="providers.check_endpoint", acks_late=True, ignore_result=True, soft_time_limit=90)
def check_endpoint(check_id: int) -> None:
    """Test connection: one token to the endpoint, on the interactive queue.

    Running twice is harmless: only a queued check is claimed (atomically); a
    second delivery, or a check whose endpoint was deleted, does nothing.
    """
    services.endpoint_check_execute(check_id=check_id)


@worker_process_init.connect
def _warm_up_gateway(**_kwargs) -> None:
    # litellm takes seconds to import; do it before the first playground run needs it.
    from apps.providers import gateway

    threading.Thread(target=gateway.warm_up, name="gateway-warm-up", daemon=True).start()
