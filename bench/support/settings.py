"""Settings of the fetch benchmark only: the studio's own settings plus a URLconf with two bench-only views.

No deployment points DJANGO_SETTINGS_MODULE here, so the bench views are never reachable in the studio.
"""

from studio.settings import *  # noqa: F403

ROOT_URLCONF = "bench.support.urls"
