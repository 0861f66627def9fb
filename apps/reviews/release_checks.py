"""Checks that must pass before a review is released, contributed by later apps (ratings: evidence thresholds).

A check is a callable `check(review=..., policy=...)` returning a list of
`CheckResult`. `services.review_release` refuses a release while any result is
`blocking` and not `met`; the review page lists every result. Reviews knows
nothing of what a check measures, so it imports none of the apps that register them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    title: str
    met: bool
    blocking: bool = False
    detail: str = ""


Check = Callable[..., list[CheckResult]]
_checks: list[Check] = []


def register(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def unregister(check: Check) -> None:
    if check in _checks:
        _checks.remove(check)


def results(*, review, policy) -> list[CheckResult]:
    found: list[CheckResult] = []
    for check in _checks:
        try:
            found.extend(check(review=review, policy=policy))
        except Exception:
            # Fail closed: a check that cannot be computed is not met, and blocks the release.
            logger.exception("release check %r failed", check)
            found.append(CheckResult(title="A release check could not be computed", met=False, blocking=True))
    return found


def blocking(*, review, policy) -> list[CheckResult]:
    """The results that stop a release: required by the policy and not met."""
    return [r for r in results(review=review, policy=policy) if r.blocking and not r.met]
