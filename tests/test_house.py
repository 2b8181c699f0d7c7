"""The layout holds: one aiohttp client module, no import circles, every method takes the
per-call options, and the retry policy alone says what a rate limit is."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

from coze_async import AsyncCoze, Message, RateLimitError, RetryPolicy
from coze_async.call import CallOptions, check_options
from coze_async.config import Timeouts
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator
from coze_async.errors import APIError, TransportError
from coze_async.retry import Decision, classify

PACKAGE = Path(__file__).resolve().parent.parent / "coze_async"
OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeouts", "retry"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at any depth of its code (TYPE_CHECKING blocks and
    function-local imports included), relative imports resolved."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import x`` may import the submodule x.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _graph(prefix: str, exclude: tuple[str, ...] = ()) -> dict[str, set[str]]:
    modules = _modules()
    inside = {
        m: p
        for m, p in modules.items()
        if (m == prefix or m.startswith(prefix + "."))
        and not any(m == e or m.startswith(e + ".") for e in exclude)
    }
    return {m: {i for i in _imports(m, p) if i in inside and i != m} for m, p in inside.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_aiohttp_is_imported_only_by_the_http_seam_and_the_server_side() -> None:
    allowed = {"coze_async._http", "coze_async.client", "coze_async.relay"}
    offenders = sorted(
        name
        for name, path in _modules().items()
        if not name.startswith(("coze_async.bench", "coze_async.emulator"))
        and name not in allowed
        and any(i == "aiohttp" or i.startswith("aiohttp.") for i in _imports(name, path))
    )
    assert offenders == []
    # The sans-IO modules named by the layout exist and are among the checked ones.
    for name in ("sse", "retry", "envelope", "call", "endpoint", "transport", "streams.base"):
        assert f"coze_async.{name}" in _modules()


def test_the_client_package_has_no_import_circle() -> None:
    # The package root re-exports everything, so edges into it are left out: a module that
    # imports ``coze_async.x`` runs the root first only when nothing has imported it yet.
    graph = _graph("coze_async", exclude=("coze_async.emulator",))
    graph.pop("coze_async")
    for deps in graph.values():
        deps.discard("coze_async")
    assert _cycle(graph) is None


def test_the_emulator_has_no_import_circle() -> None:
    graph = _graph("coze_async.emulator")
    graph.pop("coze_async.emulator")
    for deps in graph.values():
        deps.discard("coze_async.emulator")
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _api_methods() -> list[tuple[str, typing.Any]]:
    coze = AsyncCoze(token="pat_test")
    groups = {
        "chat": coze.chat,
        "conversations": coze.conversations,
        "conversations.messages": coze.conversations.messages,
        "files": coze.files,
        "workflows": coze.workflows,
        "workflows.runs": coze.workflows.runs,
    }
    out = []
    for group, resource in groups.items():
        for name, method in inspect.getmembers(type(resource), inspect.isfunction):
            if not name.startswith("_"):
                out.append((f"{group}.{name}", method))
    return out


def _accepted_keywords(fn: typing.Any) -> set[str]:
    sig = inspect.signature(fn)
    names = {
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    hints = typing.get_type_hints(fn, include_extras=True)
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            hint = hints[p.name]
            assert typing.get_origin(hint) is typing.Unpack, f"**{p.name} is not Unpack[...]"
            (typed,) = typing.get_args(hint)
            names |= set(typing.get_type_hints(typed))
    return names


def test_every_public_api_method_takes_the_per_call_options() -> None:
    methods = _api_methods()
    assert len(methods) >= 25  # chat, conversations, messages, files, workflows, runs
    missing = {
        name: sorted(OPTIONS - _accepted_keywords(fn))
        for name, fn in methods
        if OPTIONS - _accepted_keywords(fn)
    }
    assert missing == {}


def test_an_unknown_option_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="'extra_header'"):
        check_options({"extra_header": {"a": "b"}}, method="retrieve")  # type: ignore[typeddict-unknown-key]
    checked = check_options(CallOptions(timeouts=Timeouts(read=1), retry=RetryPolicy.none()))
    assert checked.timeouts == Timeouts(read=1) and checked.retry == RetryPolicy.none()


class _Chat:
    idempotent = False
    replayable = True


def test_the_policy_alone_decides_what_a_rate_limit_is() -> None:
    err = RateLimitError("busy", code=4013, http_status=200)
    assert classify(err, _Chat(), RetryPolicy()) == Decision(retry=True, rate_limited=True)
    off = RetryPolicy(rate_limit_codes=frozenset())
    # Still a RateLimitError to catch, but neither retried nor a reason to pause the limiter.
    assert classify(err, _Chat(), off) == Decision(retry=False, rate_limited=False)
    http = APIError("slow down", code=None, http_status=429)
    assert classify(http, _Chat(), RetryPolicy()).rate_limited
    assert not classify(http, _Chat(), RetryPolicy(rate_limit_statuses=frozenset())).retry
    connect = TransportError("refused", phase="connect")
    assert classify(connect, _Chat(), off) == Decision(retry=True, rate_limited=False)


@pytest.mark.anyio
@pytest.mark.parametrize(("codes", "sent"), [(None, 2), (frozenset({4009}), 1)])
async def test_removing_a_code_stops_its_retry_on_a_chat(
    emu: Emulator, codes: frozenset[int] | None, sent: int
) -> None:
    policy = RetryPolicy() if codes is None else RetryPolicy(rate_limit_codes=codes)
    async with AsyncCoze(token=emu.token, base_url=emu.url, retry=policy) as coze:
        call = coze.chat.create(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("hi")],
            extra_headers={FAULT_HEADER: "json-error=4013;times=1"},
        )
        if sent == 1:
            with pytest.raises(RateLimitError):
                await call
        else:
            assert (await call).id
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == sent


@pytest.mark.anyio
async def test_a_per_call_retry_policy_overrides_the_clients(emu: Emulator) -> None:
    async with AsyncCoze(token=emu.token, base_url=emu.url) as coze:
        with pytest.raises(RateLimitError):
            await coze.chat.create(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                messages=[Message.user("hi")],
                extra_headers={FAULT_HEADER: "json-error=4013;times=1"},
                retry=RetryPolicy.none(),
            )
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == 1


def test_with_hint_keeps_the_class_and_fields_and_adds_the_hint() -> None:
    from coze_async.errors import PermissionDeniedError

    err = PermissionDeniedError("async runs need a paid plan", code=6003, logid="L1", body={})
    hinted = err.with_hint("upgrade the plan")
    assert type(hinted) is PermissionDeniedError
    assert (hinted.code, hinted.logid, hinted.msg) == (6003, "L1", "async runs need a paid plan")
    assert "(hint: upgrade the plan)" in str(hinted) and "logid=L1" in str(hinted)
    assert err.hint is None and "hint" not in str(err)
