"""Request models: what a chat, a workflow run and a chatflow turn send, checked once.

A method builds its request model once from its keyword arguments; every call it makes then
sends the same checked value (``chat.create_and_poll`` sends the :class:`ChatRequest` its
``create`` would). Each model is frozen; its fields hold checked *copies* of what was given,
so changing a dict after the call cannot change what is sent. Bad values raise
:class:`~coze_async.errors.InvalidArgumentError` when the model is built, before anything is
sent.

The public methods take these fields as ``**params``, typed by the ``*Params`` TypedDicts
below (one place lists a method family's fields); :func:`split` separates them from the
per-call options (:class:`~coze_async.call.CallOptions`) and refuses any other name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Required, TypedDict, TypeVar, cast

import attrs

from ._validate import check_bool, check_json_object, check_str, kind, require_id
from .call import OPTION_NAMES, CallOptions
from .errors import InvalidArgumentError
from .models.chat import Message, _check_meta_data

__all__ = [
    "ChatCreateParams",
    "ChatParams",
    "ChatRequest",
    "ChatflowCallParams",
    "ChatflowParams",
    "ChatflowRequest",
    "WorkflowRunCallParams",
    "WorkflowRunParams",
    "WorkflowRunRequest",
    "check_messages",
    "check_str_map",
    "split",
]

M = TypeVar("M")

_PUBLISH_STATUSES = ("published_online", "unpublished_draft")
_EXTRA_PARAM_KEYS = frozenset({"latitude", "longitude"})


def check_str_map(name: str, value: Mapping[str, str] | None) -> dict[str, str] | None:
    """Check a ``map<string,string>`` argument (keys and values must be str) and copy it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name} must be a mapping of str to str, got {kind(value)}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"{name}[{k!r}]: keys and values must be strings")
        check_str(f"{name} key {k!r}", k)
        check_str(f"{name}[{k!r}]", v)
    return dict(value)


def check_messages(
    messages: Sequence[Message] | None,
    *,
    limit: int = 100,
    text_only: bool = False,
    query_last: bool = False,
) -> list[dict[str, Any]]:
    """Check a ``messages=`` argument and return its wire form (``additional_messages``).

    Chats take up to 100 messages, text or multimodal (a files-only message must sit next to a
    plain-text one, else Coze answers 4000); chatflows take up to 50 text messages ending with
    the user's query (``text_only``, ``query_last``). Errors name the offending index.
    """
    if messages is None:
        messages = []
    if not isinstance(messages, list | tuple):
        raise InvalidArgumentError(
            f"messages must be a list of Message, e.g. [Message.user('hi')], got {kind(messages)}"
        )
    items = list(messages)
    if query_last and not items:
        raise InvalidArgumentError("messages must hold at least the user's query")
    if len(items) > limit:
        raise InvalidArgumentError(f"messages: at most {limit} messages allowed, got {len(items)}")
    for index, m in enumerate(items):
        if not isinstance(m, Message):
            raise InvalidArgumentError(
                f"messages[{index}] must be a Message (use Message.user(...)), "
                f"got {type(m).__name__}"
            )
        if not isinstance(m.role, str) or m.role not in ("user", "assistant"):
            raise InvalidArgumentError(f"messages[{index}].role must be 'user' or 'assistant'")
        check_str(f"messages[{index}].content", m.content)
        check_str(f"messages[{index}].content_type", m.content_type)
        check_str(f"messages[{index}].type", m.type)
        if m.meta_data is not None:
            _check_meta_data(m.meta_data, f"messages[{index}].meta_data")
        if m.type == "question" and m.role != "user":
            raise InvalidArgumentError(f"messages[{index}]: type 'question' needs role 'user'")
        if m.content_type not in ("text", "object_string"):
            raise InvalidArgumentError(
                f"messages[{index}].content_type must be 'text' or 'object_string'"
            )
        if text_only and m.content_type != "text":
            raise InvalidArgumentError(f"messages[{index}]: chatflows take text messages only")
        if not m.content:
            raise InvalidArgumentError(f"messages[{index}].content must not be empty")
        if m.is_object_string:
            try:
                parsed = json.loads(m.content)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list) or not all(isinstance(i, dict) for i in parsed):
                raise InvalidArgumentError(
                    f"messages[{index}].content: object_string content must be a JSON array of "
                    "items; build it with Message.user([ContentItem...])"
                )
    if not text_only:
        for index, m in enumerate(items):
            if m.is_object_string and not any(i.get("type") == "text" for i in m.content_items()):
                neighbours = items[max(0, index - 1) : index] + items[index + 1 : index + 2]
                if not any(n.content_type == "text" for n in neighbours):
                    raise InvalidArgumentError(
                        f"messages[{index}]: a message with only files/images must be next to "
                        "a plain-text message"
                    )
    if query_last and items[-1].role != "user":
        raise InvalidArgumentError("messages: the last message must be the user's query")
    return [m.to_request() for m in items]


def split(params: Mapping[str, Any], model: type[M], *, method: str) -> tuple[M, CallOptions]:
    """``params`` as the request ``model`` (checked) and the per-call options.

    A name that is neither one of ``model``'s fields nor an option is a ``TypeError`` naming
    it (``**params`` methods would otherwise swallow a misspelled keyword); a missing
    required field is attrs' ``TypeError``.
    """
    fields = attrs.fields_dict(model)  # type: ignore[arg-type]
    unknown = sorted(set(params) - fields.keys() - OPTION_NAMES)
    if unknown:
        raise TypeError(
            f"{method}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}"
        )
    options = {k: v for k, v in params.items() if k in OPTION_NAMES}
    request = model(**{k: v for k, v in params.items() if k not in OPTION_NAMES})
    return request, cast(CallOptions, options)


def _check(request: attrs.AttrsInstance, checks: Sequence[tuple[str, Check]]) -> None:
    """The validator of a request model: check its fields in order, keeping checked copies
    (so a dict changed after the call cannot change what is sent); an error names the field.

    ``None`` is left alone where it is the default (an optional field not given).
    """
    fields = attrs.fields_dict(type(request))
    for name, check in checks:
        value = getattr(request, name)
        if value is not None or fields[name].default is not None:
            object.__setattr__(request, name, check(name, value))


Check = Callable[[str, Any], Any]


def _chat_messages(_name: str, value: Any) -> tuple[Message, ...]:
    check_messages(value)
    return tuple(value)


def _chatflow_messages(_name: str, value: Any) -> tuple[Message, ...]:
    check_messages(value, limit=50, text_only=True, query_last=True)
    return tuple(value)


def _parameters(name: str, value: Any) -> dict[str, Any] | str:
    # Coze's table says "JSON string" while every example and SDK sends an object: accept
    # both, send what was given.
    if isinstance(value, str):
        return check_str(name, value)
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"{name} must be a mapping (the start node's inputs), got {type(value).__name__}"
        )
    return check_json_object(name, value)


def _extra_params(name: str, value: Any) -> dict[str, str]:
    checked = check_str_map(name, value) or {}
    unknown = set(checked) - _EXTRA_PARAM_KEYS
    if unknown:
        raise InvalidArgumentError(
            f"extra_params only accepts latitude and longitude, got {sorted(unknown)}"
        )
    return checked


def _shortcut_command(name: str, value: Any) -> dict[str, Any]:
    command = check_json_object(name, value)
    if not command.get("command_id"):
        raise InvalidArgumentError("shortcut_command needs a command_id")
    return command


def _publish_status(_name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in _PUBLISH_STATUSES:
        raise InvalidArgumentError(
            f"publish_status must be one of {_PUBLISH_STATUSES}, got {value!r}"
        )
    return value


_CHAT_CHECKS: tuple[tuple[str, Check], ...] = (
    ("bot_id", require_id),
    ("user_id", require_id),
    ("auto_save_history", check_bool),
    ("messages", _chat_messages),
    ("conversation_id", require_id),
    ("custom_variables", check_str_map),
    ("meta_data", lambda name, v: _check_meta_data(v, name)),
    ("extra_params", _extra_params),
    ("parameters", check_json_object),
    ("shortcut_command", _shortcut_command),
    ("enable_card", check_bool),
    ("publish_status", _publish_status),
    ("bot_version", require_id),
)
_WORKFLOW_CHECKS: tuple[tuple[str, Check], ...] = (
    ("workflow_id", require_id),
    ("parameters", _parameters),
    ("bot_id", require_id),
    ("app_id", require_id),
    ("ext", check_str_map),
    ("workflow_version", require_id),
    ("connector_id", require_id),
)
_CHATFLOW_CHECKS: tuple[tuple[str, Check], ...] = (
    ("workflow_id", require_id),
    ("messages", _chatflow_messages),
    ("parameters", _parameters),
    ("app_id", require_id),
    ("bot_id", require_id),
    ("conversation_id", require_id),
    ("ext", check_str_map),
    ("workflow_version", require_id),
    ("connector_id", require_id),
)


def _set(body: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``body`` with the values that are not ``None``."""
    body.update((k, v) for k, v in values.items() if v is not None)
    return body


# ----------------------------------------------------------------------------------- chat


class ChatParams(TypedDict, total=False):
    """The fields of a chat (``chat.create``, ``chat.stream``, ``chat.create_and_poll``).

    * ``bot_id``, ``user_id`` (required): the bot, and your id for the user;
    * ``messages``: up to 100 :class:`~coze_async.models.chat.Message` (text or multimodal;
      a files-only message must sit next to a plain-text one);
    * ``conversation_id``: continue this conversation (else Coze creates one);
    * ``custom_variables``: the bot's prompt variables (str to str);
    * ``auto_save_history``: keep the messages in the conversation (default ``True``;
      ``False`` needs streaming);
    * ``meta_data``: up to 16 str pairs kept on the chat;
    * ``extra_params``: ``latitude`` / ``longitude`` only;
    * ``parameters``: a JSON object for the bot's workflow parameters;
    * ``shortcut_command``: a JSON object with at least ``command_id``;
    * ``enable_card``: answer with cards where the bot can;
    * ``publish_status``: ``"published_online"`` or ``"unpublished_draft"``;
    * ``bot_version``: a published version (not with ``"unpublished_draft"``).
    """

    bot_id: Required[str]
    user_id: Required[str]
    messages: Sequence[Message] | None
    conversation_id: str | None
    custom_variables: Mapping[str, str] | None
    auto_save_history: bool
    meta_data: Mapping[str, str] | None
    extra_params: Mapping[str, str] | None
    parameters: Mapping[str, Any] | None
    shortcut_command: Mapping[str, Any] | None
    enable_card: bool | None
    publish_status: str | None
    bot_version: str | None


class ChatCreateParams(ChatParams, CallOptions, total=False):
    """:class:`ChatParams` plus the per-call options (:class:`~coze_async.call.CallOptions`)."""


@attrs.frozen(kw_only=True)
class ChatRequest:
    """A checked chat request (fields: :class:`ChatParams`); :meth:`to_body` is its body."""

    bot_id: str
    user_id: str
    auto_save_history: bool = True
    messages: Sequence[Message] | None = None
    conversation_id: str | None = None
    custom_variables: Mapping[str, str] | None = None
    meta_data: Mapping[str, str] | None = None
    extra_params: Mapping[str, str] | None = None
    parameters: Mapping[str, Any] | None = None
    shortcut_command: Mapping[str, Any] | None = None
    enable_card: bool | None = None
    publish_status: str | None = None
    bot_version: str | None = None

    def __attrs_post_init__(self) -> None:
        _check(self, _CHAT_CHECKS)
        if self.bot_version is not None and self.publish_status == "unpublished_draft":
            raise InvalidArgumentError(
                "bot_version cannot be combined with publish_status='unpublished_draft'"
            )

    def query(self) -> dict[str, str] | None:
        """The query parameters (``conversation_id`` travels in the URL)."""
        return None if self.conversation_id is None else {"conversation_id": self.conversation_id}

    def to_body(self, stream: bool) -> dict[str, Any]:
        """The ``POST /v3/chat`` body for a streaming or non-streaming chat."""
        if not stream and not self.auto_save_history:
            raise InvalidArgumentError(
                "auto_save_history=False needs stream=True (Coze answers 4007 otherwise)"
            )
        body = {
            "bot_id": self.bot_id,
            "user_id": self.user_id,
            "stream": stream,
            "auto_save_history": self.auto_save_history,
            "additional_messages": [m.to_request() for m in self.messages or ()],
        }
        return _set(
            body,
            custom_variables=self.custom_variables,
            meta_data=self.meta_data,
            extra_params=self.extra_params,
            parameters=self.parameters,
            shortcut_command=self.shortcut_command,
            enable_card=self.enable_card,
            publish_status=self.publish_status,
            bot_version=self.bot_version,
        )


# ------------------------------------------------------------------------------ workflows


class WorkflowRunParams(TypedDict, total=False):
    """The fields of a workflow run (``workflows.run``, ``run_async``, ``stream``,
    ``run_and_wait``).

    * ``workflow_id`` (required): the published workflow;
    * ``parameters``: the Start node's inputs, a JSON object (or a JSON string);
    * ``bot_id`` or ``app_id`` (not both): the bot or app the workflow runs for;
    * ``ext``: extra str fields (``latitude``, ``longitude``, ``user_id``);
    * ``workflow_version``: a published version (else the latest);
    * ``connector_id``: the channel (``"1024"``, the API, by default).
    """

    workflow_id: Required[str]
    parameters: Mapping[str, Any] | str | None
    bot_id: str | None
    app_id: str | None
    ext: Mapping[str, str] | None
    workflow_version: str | None
    connector_id: str | None


class WorkflowRunCallParams(WorkflowRunParams, CallOptions, total=False):
    """:class:`WorkflowRunParams` plus the per-call options."""


@attrs.frozen(kw_only=True)
class WorkflowRunRequest:
    """A checked workflow run (fields: :class:`WorkflowRunParams`)."""

    workflow_id: str
    parameters: Mapping[str, Any] | str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    ext: Mapping[str, str] | None = None
    workflow_version: str | None = None
    connector_id: str | None = None

    def __attrs_post_init__(self) -> None:
        _check(self, _WORKFLOW_CHECKS[:1])
        if self.bot_id is not None and self.app_id is not None:
            raise InvalidArgumentError(
                "give bot_id= or app_id=, not both (Coze answers 4000 when both are set)"
            )
        _check(self, _WORKFLOW_CHECKS[1:])

    def to_body(self, is_async: bool | None = None) -> dict[str, Any]:
        """The run body; ``is_async`` is sent when given (``/v1/workflow/run``)."""
        return _set(
            {"workflow_id": self.workflow_id},
            parameters=self.parameters,
            bot_id=self.bot_id,
            app_id=self.app_id,
            ext=self.ext,
            workflow_version=self.workflow_version,
            connector_id=self.connector_id,
            is_async=is_async,
        )


class ChatflowParams(TypedDict, total=False):
    """The fields of a chatflow turn (``workflows.chat``).

    * ``workflow_id`` (required): the chatflow;
    * ``messages`` (required): up to 50 text messages, the last one the user's query;
    * ``app_id`` or ``bot_id`` (exactly one): the low-code app, or the bot it is bound to;
    * ``parameters``: the Start node's inputs, a JSON object (or a JSON string);
    * ``conversation_id``: continue this conversation;
    * ``ext``, ``workflow_version``, ``connector_id``: as for a run (:class:`WorkflowRunParams`).
    """

    workflow_id: Required[str]
    messages: Required[Sequence[Message]]
    parameters: Mapping[str, Any] | None
    app_id: str | None
    bot_id: str | None
    conversation_id: str | None
    ext: Mapping[str, str] | None
    workflow_version: str | None
    connector_id: str | None


class ChatflowCallParams(ChatflowParams, CallOptions, total=False):
    """:class:`ChatflowParams` plus the per-call options."""


@attrs.frozen(kw_only=True)
class ChatflowRequest:
    """A checked chatflow turn (fields: :class:`ChatflowParams`)."""

    workflow_id: str
    messages: Sequence[Message]
    parameters: Mapping[str, Any] | str | None = None
    app_id: str | None = None
    bot_id: str | None = None
    conversation_id: str | None = None
    ext: Mapping[str, str] | None = None
    workflow_version: str | None = None
    connector_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.app_id is None) == (self.bot_id is None):
            raise InvalidArgumentError(
                "give exactly one of app_id= (the chatflow's app) or bot_id= (the bot it is "
                "bound to)"
            )
        _check(self, _CHATFLOW_CHECKS)

    def to_body(self) -> dict[str, Any]:
        """The ``POST /v1/workflows/chat`` body."""
        body = {
            "workflow_id": self.workflow_id,
            "additional_messages": [m.to_request() for m in self.messages],
        }
        return _set(
            body,
            parameters=self.parameters,
            app_id=self.app_id,
            bot_id=self.bot_id,
            conversation_id=self.conversation_id,
            ext=self.ext,
            workflow_version=self.workflow_version,
            connector_id=self.connector_id,
        )
