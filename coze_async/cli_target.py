"""Which server a ``coze-async`` command talks to, decided in one place for every command.

The rules (README, "The command line"):

* ``--target coze`` means Coze, at ``--base-url``, else ``$COZE_API_BASE``, else api.coze.cn,
  with ``--token`` or ``$COZE_API_TOKEN``. ``--target emulator`` means an emulator: the one at
  ``--base-url``, else the embedded one.
* Without ``--target``, an explicit ``--base-url`` decides: a loopback host (127.0.0.0/8,
  ``::1``, ``localhost``) is an emulator you started, any other host is Coze. An explicit
  ``--token`` means Coze.
* The environment (``COZE_API_TOKEN``, ``COZE_API_BASE``) chooses the target only for the
  commands that make one call at a time (``chat``, ``workflow``). ``bench`` sends hundreds
  of calls, so an exported token never turns it away from the embedded emulator; the
  environment only fills in the token and host once its flags chose Coze.

A token from the environment is never sent to an emulator: emulators get ``--token`` or the
emulator's default token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import attrs

from .config import COZE_CN_BASE_URL, is_loopback_host

if TYPE_CHECKING:
    from .bench import BenchConfig
    from .ratelimit import Plan

__all__ = [
    "EMULATOR_TOKEN",
    "CallEstimate",
    "Target",
    "TargetError",
    "budget_refusal",
    "estimate_calls",
    "is_loopback_url",
    "resolve_target",
]

#: The emulator's default bearer token (``coze_async.emulator.DEFAULT_TOKEN``; kept literal so
#: that resolving a target does not import the emulator).
EMULATOR_TOKEN = "emu_test_token"

Kind = Literal["embedded", "emulator", "coze"]


class TargetError(ValueError):
    """The flags name no usable target (e.g. Coze without a token); the message says why."""


@attrs.frozen(kw_only=True)
class Target:
    """A resolved target: the embedded emulator, an emulator at a URL, or Coze at a URL."""

    kind: Kind
    base_url: str | None = None
    token: str | None = attrs.field(default=None, repr=False)

    @property
    def is_coze(self) -> bool:
        """True when calls go to Coze (they count against the account's quotas)."""
        return self.kind == "coze"

    def describe(self) -> str:
        """How the command's one stderr line names the target."""
        if self.kind == "embedded":
            return "the embedded emulator (no account needed)"
        if self.kind == "emulator":
            return f"the emulator at {self.base_url}"
        return f"Coze at {self.base_url}"


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback address or ``localhost``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".localhost") or is_loopback_host(host)


def resolve_target(
    *,
    target: str | None,
    base_url: str | None,
    token: str | None,
    env: Mapping[str, str],
    env_chooses: bool,
) -> Target:
    """Decide the target from a command's ``--target``, ``--base-url``, ``--token`` and ``env``.

    ``env_chooses`` is True for one-call commands (an exported ``COZE_API_TOKEN`` or
    ``COZE_API_BASE`` then chooses the target as the flags would) and False for ``bench``.
    Raises :class:`TargetError` when Coze is chosen but no token is known.
    """
    env_token = env.get("COZE_API_TOKEN") or None
    env_base = env.get("COZE_API_BASE") or None

    def coze(url: str | None) -> Target:
        key = token or env_token
        if not key:
            raise TargetError(
                f"Coze at {url or COZE_CN_BASE_URL} needs a token (--token or COZE_API_TOKEN); "
                "with no account, leave out --target/--base-url to use the embedded emulator"
            )
        return Target(kind="coze", base_url=url or env_base or COZE_CN_BASE_URL, token=key)

    def emulator(url: str | None) -> Target:
        if url is None:
            return Target(kind="embedded", token=token or EMULATOR_TOKEN)
        return Target(kind="emulator", base_url=url, token=token or EMULATOR_TOKEN)

    if target == "coze":
        return coze(base_url)
    if target == "emulator":
        return emulator(base_url)
    if target is not None:
        raise TargetError(f"--target must be coze or emulator, got {target!r}")
    url = base_url or (env_base if env_chooses else None)
    if url is not None:
        return emulator(url) if is_loopback_url(url) else coze(url)
    if token or (env_chooses and env_token):
        return coze(None)
    return emulator(None)


# ----------------------------------------------------------------------------- bench call budget

#: Most calls one ``chat-poll`` request can make: the create, a retrieve every 0.25 s for up
#: to 60 s (the runner's poll settings), the message list and a cancel on timeout.
_POLL_CALLS = 1 + math.ceil(60 / 0.25) + 1 + 1


@attrs.frozen
class CallEstimate:
    """The most API calls a bench run may make (None: no bound), and how that was worked out."""

    upper: int | None
    why: str


def _bucket_bound(plan: Plan, name: str, seconds: float) -> int | None:
    bucket = plan.bucket(name)
    if bucket is None:
        return None
    return math.ceil(seconds / bucket.period) * bucket.limit


def _min(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def estimate_calls(config: BenchConfig) -> CallEstimate:
    """An upper bound of the API calls ``config`` may send (each counts on the free plan).

    Two bounds, the smaller wins: the request count (``requests`` x attempts x calls per
    request; a ``chat-poll`` request polls, so it may make up to 243 calls) and, with the
    limiter on, the plan's quotas over the run's deadline plus its grace period (the limiter
    never lets more through). ``--no-limit`` with no ``--requests`` has no bound.
    """
    from .bench.runner import _MIXED

    kinds = _MIXED if config.scenario == "mixed" else (config.scenario,)
    attempts = 1 + config.retries
    by_requests: int | None = None
    if config.requests is not None:
        by_requests = 0
        for i, kind in enumerate(kinds):
            # Requests cycle through the kinds one by one.
            count = len(range(i, config.requests, len(kinds)))
            per = _POLL_CALLS if kind == "chat-poll" else 1
            by_requests += count * per * attempts
    by_quota: int | None = None
    if config.limit:
        seconds = config.deadline + config.grace
        model = _bucket_bound(config.plan, "model_rpm", seconds)
        chat = _bucket_bound(config.plan, "chat", seconds)
        flow = _bucket_bound(config.plan, "workflow", seconds)
        parts: list[int | None] = []
        if any(k.startswith("chat") for k in kinds):
            # chat-stream charges chat and model_rpm; chat-poll's retrieves only chat.
            only_stream = all(k == "chat-stream" for k in kinds)
            parts.append(_min(chat, model) if only_stream else chat)
        if "workflow-stream" in kinds:
            parts.append(_min(flow, model))
        if all(p is not None for p in parts):
            by_quota = sum(p for p in parts if p is not None)
    upper = _min(by_requests, by_quota)
    if upper is None:
        why = "no bound: the limiter is off (--no-limit) and no --requests cap is set"
    elif upper == by_requests:
        why = f"{config.requests} requests x {attempts} attempt(s) each"
        if "chat-poll" in kinds:
            why += f", up to {_POLL_CALLS} calls per chat-poll request"
    else:
        why = (
            f"the {config.plan.name} quotas over {config.deadline:g} s plus "
            f"{config.grace:g} s of grace"
        )
    return CallEstimate(upper, why)


def budget_refusal(
    estimate: CallEstimate, plan: Plan, *, max_calls: int | None, yes: bool
) -> str | None:
    """Why a bench run against Coze must not start, or None when it may.

    A run is refused, unless ``yes``, when it may make more calls than ``max_calls``; on a
    plan with a lifetime allowance (the free plan's 500 calls) it is also refused when no
    ``max_calls`` was given.
    """
    if yes:
        return None
    upper = "an unbounded number of" if estimate.upper is None else f"up to {estimate.upper}"
    if max_calls is not None:
        if estimate.upper is not None and estimate.upper <= max_calls:
            return None
        return (
            f"this run may make {upper} API calls, more than --max-calls {max_calls}; "
            "lower --requests/--duration, or pass --yes to run anyway"
        )
    if plan.lifetime_calls is not None:
        return (
            f"the {plan.name} plan allows {plan.lifetime_calls} API calls per account, ever, "
            f"and this run may make {upper}; pass --max-calls N to accept a bound "
            "(with --requests to keep under it), or --yes to run anyway"
        )
    return None
