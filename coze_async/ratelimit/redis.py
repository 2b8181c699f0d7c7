"""A quota limiter shared through Redis: one account's limits kept by a whole fleet.

``AsyncCoze(plan=Plan.PERSONAL_PRO, limiter=RedisLimiter(url="redis://host:6379/0"))`` keeps
every process and host that uses the same Redis (and ``account``) inside one plan together.

Algorithm: the same strict sliding log as :class:`~coze_async.ratelimit.Limiter`, kept in
Redis. Each bucket is a sorted set of the times calls are counted from (µs) and a sorted set
``<bucket>:pending`` of granted calls not placed yet (member -> the latest time the call can
count from). A grant is allowed when fewer than ``limit`` calls are counted in the window
``(t - window, t]`` (``window = period * (1 + margin)``) or pending, so no window of length
``period`` ever holds more than ``limit`` calls. Every acquire attempt is one Lua script
(EVALSHA) that reads Redis's own clock (``TIME``: the hosts' clocks never matter), trims old
calls, and either records one grant in every bucket at the same instant or answers how long
to wait until all of them have room. A pause after a server rejection is a ``<bucket>:pause``
key that the script honours, so it holds back the whole fleet.

As in the in-process limiter, a reserved call is pending until its answer arrives (the
latest moment the server can have counted it) and is then counted from that moment, on
Redis's clock; background writes, off the call's path, tell Redis when the request was
written and when it was answered. A pending call is never trimmed away, however long its
send is delayed (a busy connection pool). It counts from :data:`SETTLE_AFTER` after its write
if its answer takes longer, and from :data:`UNWRITTEN_HOLD` after its grant if it is never
written nor given back (its process was killed), so nothing stays stuck.

No reservation is held while waiting: a waiting task sleeps the wait the script answered and
asks again. That is why a cancelled waiter takes nothing.

Within one process, the tasks that need the same buckets queue on one FIFO lock, so they are
served in arrival order and the process has at most one script in flight per bucket set while
waiting. Across processes there is no queue: when a window opens, the first script to run
wins. ``redis`` (redis-py's asyncio client) is an optional dependency: ``pip install
'coze-async[redis]'``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import os
import secrets
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import anyio

from ..errors import (
    InvalidArgumentError,
    LimiterUnavailableError,
    LocalRateLimitError,
    MissingExtraError,
)
from .limiter import SETTLE_AFTER, Limiter
from .plans import Plan

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.connection import AbstractConnection, ConnectionPool

__all__ = ["RedisLimiter", "RedisReservation"]

logger = logging.getLogger("coze_async.ratelimit")

#: After Redis failed with ``on_unavailable="local"``, how long calls use the in-process
#: limiter before Redis is tried again (so an outage costs one failed attempt per interval,
#: not one per call).
RECHECK_AFTER = 5.0

#: How long a reserved call that is never written nor given back (its process was killed)
#: stays pending before it counts from then and ages out like any call.
UNWRITTEN_HOLD = 60.0

# KEYS: for each bucket, its log (member -> time counted from, µs), its pause key and its
# pending set (member -> latest time the call can count from, µs).
# ARGV[1]: this attempt's unique member; ARGV[2]: "1" to reserve (pending), "0" to count now;
# ARGV[3]: how long an unwritten reservation may stay pending (µs); then for each bucket:
# limit, window (µs). Returns 0 when one grant was recorded in every bucket at the same
# instant, else the µs to wait before asking again.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS / 3
local member = ARGV[1]
local hold = tonumber(ARGV[3])
-- redis-py resends a command after a dropped connection: the same member must not take twice.
if redis.call('ZSCORE', KEYS[1], member) or redis.call('ZSCORE', KEYS[3], member) then
  return 0
end
local wait = 0
for i = 1, n do
  local log = KEYS[3 * i - 2]
  local pending = KEYS[3 * i]
  local limit = tonumber(ARGV[2 * i + 2])
  local window = tonumber(ARGV[2 * i + 3])
  local paused = tonumber(redis.call('GET', KEYS[3 * i - 1]) or 0)
  if paused - now > wait then wait = paused - now end
  -- A pending call past its latest time counts from that time, like any call.
  local due = redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'WITHSCORES')
  for j = 1, #due, 2 do
    redis.call('ZREM', pending, due[j])
    if tonumber(due[j + 1]) > now - window then
      redis.call('ZADD', log, due[j + 1], due[j])
    end
  end
  -- A call counted from c is inside the window (now - window, now] unless c <= now - window.
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local count = redis.call('ZCARD', log) + redis.call('ZCARD', pending)
  if count >= limit then
    -- Room comes back when the (k+1)-th earliest of them leaves the window.
    local k = count - limit
    local a = redis.call('ZRANGE', log, 0, k, 'WITHSCORES')
    local b = redis.call('ZRANGE', pending, 0, k, 'WITHSCORES')
    local ia, ib, at, from_pending = 2, 2, 0, false
    for _ = 0, k do
      local sa = tonumber(a[ia] or math.huge)
      local sb = tonumber(b[ib] or math.huge)
      if sa <= sb then at, from_pending, ia = sa, false, ia + 2
      else at, from_pending, ib = sb, true, ib + 2 end
    end
    local ready = at + window - now
    -- A pending call's answer may place it sooner than its latest time: look again soon.
    if from_pending and ready > window / 10 then ready = math.floor(window / 10) + 1 end
    if ready > wait then wait = ready end
  end
end
if wait > 0 then return math.floor(wait) + 1 end
for i = 1, n do
  local log = KEYS[3 * i - 2]
  local window = tonumber(ARGV[2 * i + 3])
  local ttl = math.floor((window + hold) / 1000) + 1000
  if ARGV[2] == '1' then
    redis.call('ZADD', KEYS[3 * i], now + hold, member)
    redis.call('PEXPIRE', KEYS[3 * i], ttl)
  else
    redis.call('ZADD', log, now, member)
  end
  -- Idle accounts leave nothing behind: the keys outlive their newest call by 1 s only.
  redis.call('PEXPIRE', log, ttl)
end
return 0
"""

# KEYS: pause keys. ARGV[1]: pause length (µs). Extends, never shortens, a pause.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
local until_us = now + pause
for i = 1, #KEYS do
  local current = tonumber(redis.call('GET', KEYS[i]) or 0)
  if until_us > current then
    redis.call('SET', KEYS[i], until_us, 'PX', math.floor(pause / 1000) + 1000)
  end
end
return 0
"""

# KEYS: bucket logs and pending sets. ARGV[1]: the member of a grant to take back (its caller
# was cancelled mid-attempt, or the call was never written).
_RELEASE_LUA = """
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 0
"""


# KEYS: pending sets. ARGV[1]: the member of a reserved call whose request is being written;
# ARGV[2]: SETTLE_AFTER (µs). The call now counts from SETTLE_AFTER after this moment at the
# latest (XX: only while it is still pending).
_WRITTEN_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', now + tonumber(ARGV[2]), ARGV[1]) end
return 0
"""


# KEYS: for each bucket, its log then its pending set. ARGV[1]: the member of a reserved call
# whose answer has arrived (or whose attempt ended); then each bucket's window (µs). The call
# is counted from now, or from its latest time if that came first.
_DONE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS / 2 do
  local log = KEYS[2 * i - 1]
  local pending = KEYS[2 * i]
  local latest = redis.call('ZSCORE', pending, ARGV[1])
  if latest then
    redis.call('ZREM', pending, ARGV[1])
    local at = math.min(now, tonumber(latest))
    local window = tonumber(ARGV[i + 1])
    if at > now - window then
      redis.call('ZADD', log, at, ARGV[1])
      redis.call('PEXPIRE', log, math.floor(window / 1000) + 1000)
    end
  end
end
return 0
"""


class _Script:
    """A Lua script and its SHA1, for EVALSHA (loaded on the first NOSCRIPT answer)."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text.encode()
        self.sha = hashlib.sha1(self.text).hexdigest()


_ACQUIRE = _Script(_ACQUIRE_LUA)
_PAUSE = _Script(_PAUSE_LUA)
_RELEASE = _Script(_RELEASE_LUA)
_WRITTEN = _Script(_WRITTEN_LUA)
_DONE = _Script(_DONE_LUA)


class RedisReservation:
    """A grant pending in Redis until its call's answer arrives (see ``Limiter.reserve``).

    :meth:`commit` (the request is being written) and :meth:`done` (its answer arrived) are
    background writes on Redis's clock: the send is never delayed by a round trip.
    """

    __slots__ = ("_limiter", "_member", "_spec", "_written", "waited")

    def __init__(
        self, limiter: RedisLimiter, spec: _Spec | None, member: str | None, waited: float
    ) -> None:
        self._limiter = limiter
        self._spec = spec
        self._member = member
        self._written = False
        #: Seconds the call waited for the quota.
        self.waited = waited

    def commit(self) -> None:
        """The request is being written now. Idempotent."""
        if self._member is None or self._written:
            return
        self._written = True
        assert self._spec is not None
        lim = self._limiter
        lim._spawn(lim._remote(_WRITTEN, self._spec.pending_keys, [self._member, lim._settle_us]))

    def done(self, *, traced: bool = False) -> None:
        """The answer arrived or the attempt ended (see ``Reservation.done``). Idempotent."""
        member, self._member = self._member, None
        if member is None:
            return
        assert self._spec is not None
        lim = self._limiter
        if traced and not self._written:
            lim._spawn(lim._release(self._spec.log_keys + self._spec.pending_keys, member))
        else:
            spec = self._spec
            lim._spawn(lim._remote(_DONE, spec.done_keys, [member, *spec.windows]))


class _Spec:
    """Everything one bucket set needs per attempt, computed once."""

    __slots__ = (
        "args",
        "done_keys",
        "keys",
        "lock",
        "lock_key",
        "log_keys",
        "names",
        "pause_keys",
        "pending_keys",
        "windows",
    )

    def __init__(self, names: tuple[str, ...], keys: list[bytes], args: list[bytes]) -> None:
        self.names = names
        self.keys = keys
        self.args = args
        self.log_keys = keys[0::3]
        self.pause_keys = keys[1::3]
        self.pending_keys = keys[2::3]
        self.done_keys = [
            k for pair in zip(self.log_keys, self.pending_keys, strict=True) for k in pair
        ]
        self.windows = args[1::2]
        self.lock_key = tuple(sorted(names))
        # Made on first acquire, inside the event loop (pause() may run outside one).
        self.lock: anyio.Lock | None = None


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError as exc:
        raise MissingExtraError(
            "RedisLimiter needs redis-py's asyncio client, which is not installed: "
            "pip install 'coze-async[redis]'",
            extra="redis",
        ) from exc
    return redis


def _where(url: str) -> str:
    """``host:port`` of a Redis URL, never its user name or password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or '?'}:{port}"


class RedisLimiter:
    """A :class:`~coze_async.ratelimit.QuotaLimiter` shared by every process using one Redis.

    ``url`` is a redis-py URL (``redis://[[user]:password@]host:port/db``, ``rediss://``,
    ``unix://``); or pass a ``client`` (``redis.asyncio.Redis``, not a cluster client) whose
    connection settings to use: the limiter opens one connection of its own with them and
    never closes the client. Keys are ``<prefix>{<account>}:<bucket>``: give each Coze account
    its own ``account`` so several accounts can share one Redis (the braces keep one
    account's keys in one Redis Cluster slot). Every process of an account must use the same
    plan and margin.

    ``margin`` widens each window by that fraction of its period, as in the in-process
    :class:`~coze_async.ratelimit.Limiter`. ``socket_timeout`` bounds each Redis round trip
    (connecting included).

    When Redis cannot be reached (or answers with an error), ``on_unavailable="fail"``
    (default) raises :class:`~coze_async.errors.LimiterUnavailableError`: the call is not
    sent (fail closed). ``on_unavailable="local"`` logs a warning and uses an in-process
    :class:`~coze_async.ratelimit.Limiter` for the same plan instead, trying Redis again
    every :data:`RECHECK_AFTER` seconds; limits are then per process, not per fleet.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        plan: Plan | None = None,
        account: str = "default",
        prefix: str = "coze_async:quota:",
        margin: float = 0.0,
        on_unavailable: Literal["fail", "local"] = "fail",
        client: Redis | None = None,
        socket_timeout: float = 1.0,
    ) -> None:
        redis = _import_redis()
        if margin < 0:
            raise InvalidArgumentError("margin must be >= 0")
        if on_unavailable not in ("fail", "local"):
            raise InvalidArgumentError("on_unavailable must be 'fail' or 'local'")
        if not account or "{" in account or "}" in account:
            raise InvalidArgumentError("account must be non-empty and contain no braces")
        if socket_timeout <= 0:
            raise InvalidArgumentError("socket_timeout must be > 0")
        self.margin = margin
        self.on_unavailable: Literal["fail", "local"] = on_unavailable
        self.account = account
        self.prefix = prefix
        self.plan: Plan | None = None
        self._socket_timeout = socket_timeout
        self._owns_pool = client is None
        if client is None:
            # No socket_timeout on the connection itself: redis-py would run every send in
            # asyncio.wait_for (a new task per call); _call bounds the whole round trip.
            self._pool: ConnectionPool = redis.asyncio.ConnectionPool.from_url(
                url, socket_connect_timeout=socket_timeout
            )
            self.where = _where(url)
        else:
            self._pool = client.connection_pool
            kwargs = self._pool.connection_kwargs
            self.where = (
                f"unix:{kwargs['path']}"
                if "path" in kwargs
                else f"{kwargs.get('host', '?')}:{kwargs.get('port', 6379)}"
            )
        self._conn: AbstractConnection | None = None
        self._io_lock = asyncio.Lock()
        self._unavailable: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._reply_error: type[BaseException] = redis.exceptions.ResponseError
        self._noscript: type[BaseException] = redis.exceptions.NoScriptError
        self._dropped: type[BaseException] = redis.exceptions.ConnectionError
        self._table: dict[str, tuple[int, int]] = {}
        self._specs: dict[tuple[str, ...], _Spec | None] = {}
        self._locks: dict[tuple[str, ...], anyio.Lock] = {}
        self._paused: dict[str, float] = {}
        self._local: Limiter | None = None
        self._local_until = -math.inf  # monotonic time until which calls skip Redis
        self._outage = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._pid = -1
        self._member_prefix = ""
        self._seq = itertools.count()
        self._settle_us = b"%d" % round(SETTLE_AFTER * 1_000_000)
        self._hold_us = b"%d" % round(UNWRITTEN_HOLD * 1_000_000)
        if plan is not None:
            self.bind(plan)

    def __repr__(self) -> str:
        return (
            f"RedisLimiter({self.where!r}, account={self.account!r}, "
            f"plan={self.plan.name if self.plan else None!r})"
        )

    def bind(self, plan: Plan) -> None:
        """Use ``plan``'s buckets (``AsyncCoze(plan=...)`` calls this)."""
        self.plan = plan
        self._table = {
            b.name: (b.limit, round(b.period * (1 + self.margin) * 1_000_000)) for b in plan.buckets
        }
        self._specs.clear()
        self._local = Limiter(plan, margin=self.margin) if self.on_unavailable == "local" else None

    def key(self, bucket: str) -> str:
        """The Redis key of ``bucket``'s log (``:pause`` and ``:pending`` keys add a suffix)."""
        return f"{self.prefix}{{{self.account}}}:{bucket}"

    def _spec(self, names: tuple[str, ...]) -> _Spec | None:
        table = self._table
        known = tuple(dict.fromkeys(n for n in names if n in table))
        spec: _Spec | None = None
        if known:
            # Encoded once here, not by redis-py on every attempt.
            keys: list[bytes] = []
            args: list[bytes] = []
            for name in known:
                log = self.key(name).encode()
                limit, window_us = table[name]
                keys += (log, log + b":pause", log + b":pending")
                args += (b"%d" % limit, b"%d" % window_us)
            spec = _Spec(known, keys, args)
        self._specs[names] = spec
        return spec

    def _member(self) -> str:
        # Unique across processes and hosts: a random token per process (re-drawn after a
        # fork, so a child never reuses its parent's members) and a counter.
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            self._member_prefix = f"{secrets.token_hex(6)}:{pid}:"
        return f"{self._member_prefix}{next(self._seq)}"

    @property
    def instance_id(self) -> str:
        """The prefix of this process's grant members in Redis (for diagnostics and tests)."""
        self._member()
        return self._member_prefix

    async def acquire(self, names: Sequence[str], *, timeout: float | None = None) -> float:
        """Take one token from each named bucket, fleet-wide; return the seconds waited.

        The seconds waited are 0.0 when the tokens were there at once (the Redis round trip
        is not counted as waiting). Buckets the plan does not have are ignored. Raises
        :class:`~coze_async.errors.LocalRateLimitError` when the tokens cannot be had within
        ``timeout`` seconds (nothing is taken then), and
        :class:`~coze_async.errors.LimiterUnavailableError` when Redis cannot be reached and
        ``on_unavailable="fail"``.
        """
        waited, _, _ = await self._take(names, timeout, reserve=False)
        return waited

    async def reserve(
        self, names: Sequence[str], *, timeout: float | None = None
    ) -> RedisReservation:
        """Like :meth:`acquire`, but the grant stays pending until :meth:`RedisReservation.done`
        (the answer arrived) and is counted from then."""
        waited, member, spec = await self._take(names, timeout, reserve=True)
        return RedisReservation(self, spec, member, waited)

    async def _take(
        self, names: Sequence[str], timeout: float | None, *, reserve: bool
    ) -> tuple[float, str | None, _Spec | None]:
        # (seconds waited, the Redis member granted or None, the bucket set)
        key = names if isinstance(names, tuple) else tuple(names)
        try:
            spec = self._specs[key]
        except KeyError:
            spec = self._spec(key)
        if spec is None:
            return 0.0, None, None
        start = time.monotonic()
        deadline = math.inf if timeout is None else start + timeout
        member: str | None = None
        if self._local_until > start:
            granted, delayed = False, False
        else:
            lock = spec.lock
            if lock is None:
                # One FIFO queue per bucket set, however the names were ordered.
                lock = spec.lock = self._locks.setdefault(spec.lock_key, anyio.Lock())
            try:
                lock.acquire_nowait()
                queued = False
            except anyio.WouldBlock:
                await self._queue(lock, spec, deadline, timeout)
                queued = True
            try:
                member, slept = await self._acquire_redis(spec, deadline, timeout, reserve)
            finally:
                lock.release()
            granted = member is not None
            delayed = queued or slept
        if not granted:
            delayed = await self._acquire_local(spec, deadline) or delayed
        if not delayed:
            return 0.0, member, spec
        waited = time.monotonic() - start
        logger.debug("waited %.3fs for %s", waited, ",".join(spec.names))
        return waited, member, spec

    async def _queue(
        self, lock: anyio.Lock, spec: _Spec, deadline: float, timeout: float | None
    ) -> None:
        # Wait for the tasks ahead of us (FIFO), at most until the deadline.
        got = False
        with anyio.move_on_after(deadline - time.monotonic()):
            await lock.acquire()
            got = True
        if not got:
            raise LocalRateLimitError(
                f"quota for {'+'.join(spec.names)} not available within {timeout} s "
                "(queued behind other calls)"
            )

    async def _acquire_redis(
        self, spec: _Spec, deadline: float, timeout: float | None, reserve: bool
    ) -> tuple[str | None, bool]:
        """Ask Redis until granted: (the member granted, slept). No member means: go local."""
        slept = False
        while True:
            now = time.monotonic()
            if self._local_until > now:
                return None, slept  # another task found Redis down while we queued
            # A pause this process was told about is honoured at once, even before its
            # write to Redis has landed.
            paused = max(self._paused.get(n, -math.inf) for n in spec.names)
            if paused > now:
                wait = paused - now
            else:
                member = self._member()
                try:
                    args = [member, b"1" if reserve else b"0", self._hold_us, *spec.args]
                    wait_us = await self._call(_ACQUIRE, spec.keys, args)
                except anyio.get_cancelled_exc_class():
                    # The script may have run and granted before the cancellation reached
                    # us: give that grant back, so a cancelled call takes nothing.
                    self._spawn(self._release(spec.log_keys + spec.pending_keys, member))
                    raise
                except self._unavailable as exc:
                    self._unreachable(exc)  # raises unless on_unavailable="local"
                    return None, slept
                if self._outage:
                    self._outage = False
                    logger.warning("Redis quota limiter at %s is reachable again", self.where)
                if not wait_us:
                    return member, slept
                wait = int(wait_us) / 1_000_000
                now = time.monotonic()
            if now + wait > deadline:
                raise LocalRateLimitError(
                    f"quota for {'+'.join(spec.names)} not available within {timeout} s "
                    f"(next slot in {wait:.3f} s)"
                )
            logger.debug("waiting %.3fs for %s", wait, ",".join(spec.names))
            await anyio.sleep(wait)
            slept = True

    async def _acquire_local(self, spec: _Spec, deadline: float) -> bool:
        """The in-process fallback; True if it had to wait."""
        assert self._local is not None
        remaining = None if math.isinf(deadline) else max(0.0, deadline - time.monotonic())
        return await self._local.acquire(spec.names, timeout=remaining) > 0

    def _unreachable(self, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError):  # ours (asyncio.timeout), not redis-py's
            reason = f"no answer within {self._socket_timeout:g} s"
        else:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        password = self._pool.connection_kwargs.get("password")
        if password:
            reason = reason.replace(str(password), "***")
        if self.on_unavailable == "fail":
            raise LimiterUnavailableError(
                f"Redis quota limiter at {self.where} is unavailable ({reason}); failing "
                "closed: the call was not sent (on_unavailable='local' would fall back to a "
                "per-process limiter)"
            ) from exc
        self._local_until = time.monotonic() + RECHECK_AFTER
        if not self._outage:
            self._outage = True
            logger.warning(
                "Redis quota limiter at %s is unavailable (%s); using the in-process limiter "
                "(limits are per process, not shared) and trying Redis again every %g s",
                self.where,
                reason,
                RECHECK_AFTER,
            )

    def pause(self, names: Sequence[str], seconds: float) -> None:
        """Let nothing through the named buckets for ``seconds``, in every process.

        Honoured at once in this process; written to Redis in the background (this method
        is synchronous, as the transport calls it), where every other process's next
        attempt sees it.
        """
        if seconds <= 0:
            return
        spec = self._spec(names if isinstance(names, tuple) else tuple(names))
        if spec is None:
            return
        until = time.monotonic() + seconds
        for name in spec.names:
            if until > self._paused.get(name, -math.inf):
                self._paused[name] = until
        if self._local is not None:
            self._local.pause(spec.names, seconds)
        logger.debug("buckets %s paused for %.3fs", ",".join(spec.names), seconds)
        self._spawn(self._pause_remote(spec.pause_keys, seconds))

    async def _pause_remote(self, keys: list[bytes], seconds: float) -> None:
        try:
            await self._call(_PAUSE, keys, [round(seconds * 1_000_000)])
        except self._unavailable as exc:
            logger.warning(
                "could not share a quota pause through Redis at %s (%s): only this process "
                "holds back",
                self.where,
                type(exc).__name__,
            )

    async def _remote(self, script: _Script, keys: list[bytes], args: list[Any]) -> None:
        try:
            await self._call(script, keys, args)
        except self._unavailable:
            # The call stays pending until its latest time: counted late, the safe side.
            logger.debug("could not place a pending call (it counts until its latest time)")

    async def _release(self, log_keys: list[bytes], member: str) -> None:
        try:
            await self._call(_RELEASE, log_keys, [member])
        except self._unavailable:
            # Nothing is stuck either way: the grant ages out of the window.
            logger.debug("could not give back a cancelled grant (it ages out)")

    async def _call(self, script: _Script, keys: Sequence[bytes], args: Sequence[Any]) -> Any:
        """One EVALSHA on this limiter's own connection, bounded by ``socket_timeout``.

        A connection of our own rather than the pool's per-command checkout: on loopback the
        pool's bookkeeping and redis-py's per-send timeout task cost about as much as the
        round trip itself. Tasks of this process take turns on it (a round trip is short).
        """
        async with self._io_lock:
            conn = self._conn
            if conn is None:
                # What pool.make_connection() does, outside the pool's accounting.
                conn = self._conn = self._pool.connection_class(**self._pool.connection_kwargs)
            retried = loaded = False
            while True:
                reused = conn.is_connected
                try:
                    async with asyncio.timeout(self._socket_timeout):
                        await conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                        return await conn.read_response()
                except self._noscript:
                    # Redis restarted or flushed its scripts: load ours, once, and go again.
                    if loaded:
                        raise
                    loaded = True
                    async with asyncio.timeout(self._socket_timeout):
                        await conn.send_command("SCRIPT", "LOAD", script.text)
                        await conn.read_response()
                except self._reply_error:
                    raise  # an error reply: the connection is still in step
                except self._dropped:
                    # Redis closed a connection we had kept (restart, idle timeout): one try
                    # on a fresh one. The script's own check keeps a resent attempt from
                    # taking twice.
                    if retried or not reused:
                        self._drop(conn)
                        raise
                    retried = True
                except BaseException:
                    # Timeout or cancellation mid-call: a reply may still be on its way, so
                    # this connection can never be trusted to be in step again.
                    self._drop(conn)
                    raise

    def _drop(self, conn: AbstractConnection) -> None:
        if self._conn is conn:
            self._conn = None
        self._spawn(conn.disconnect(nowait=True))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()  # no event loop (called from sync code): local effect only
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait until the background writes (shared pauses) have reached Redis."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Finish background writes (pauses) and close this limiter's connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            with anyio.move_on_after(2 * self._socket_timeout):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect()
        if self._owns_pool:
            await self._pool.disconnect()
