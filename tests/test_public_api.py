"""The public surface is deliberate: ``__all__`` is pinned and everything in it is documented."""

from __future__ import annotations

import inspect

import attrs

import coze_async

EXPECTED = {
    "Limiter", "LimiterUnavailableError", "Plan",
    "COZE_CN_BASE_URL", "COZE_COM_BASE_URL", "APIError", "AsyncCoze", "AudioDelta", "Auth",
    "AuthenticationError", "BadRequestError", "CallableAuth", "Chat", "ChatCompleted",
    "ChatCreated", "ChatEvent", "ChatFailed", "ChatFailedError", "ChatInProgress", "ChatPoll",
    "ChatPollTimeoutError", "ChatRequiresAction", "ChatSnapshot", "ChatStatus", "ChatStream",
    "ConflictError", "ContentItem", "ContentType", "CozeError", "Done", "EventStream",
    "IncompleteStreamError", "InvalidArgumentError", "InvalidEventError", "LastError",
    "EventTooLargeError", "ResponseTooLargeError", "BudgetFileError",
    "LocalRateLimitError", "Message", "MessageCompleted", "MessageDelta", "MessageRole",
    "MessageType", "NotFoundError", "PermissionDeniedError", "QuotaExhaustedError",
    "RateLimitError", "RequestTooLargeError", "RequiredAction", "ResponseValidationError",
    "RetryPolicy", "ServerError", "StreamError", "StreamErrorEvent", "StreamInterruptedError",
    "SubmitToolOutputs", "Timeouts", "TokenAuth", "ToolCall", "ToolCallFunction", "ToolOutput",
    "TransportError", "TransportTimeoutError", "UnknownEvent", "Usage", "__version__",
    "accumulate_chat",
    # conversations, messages, files, pagination
    "AsyncPager", "Conversation", "FeedbackType", "File", "Page", "Section",
    # workflows and chatflows
    "InterruptData", "InterruptType", "NodeExecuteStatus", "StreamGapError", "WorkflowDone",
    "WorkflowEvent", "WorkflowInterrupt", "WorkflowMessage", "WorkflowNodeContent",
    "WorkflowNodeOutput", "WorkflowPing", "WorkflowPollTimeoutError", "WorkflowResult",
    "WorkflowRunFailedError", "WorkflowRunHistory", "WorkflowRunResult", "WorkflowRunStatus",
    "WorkflowSnapshot", "WorkflowStream", "accumulate_workflow",
    # OAuth
    "AccessDeniedError", "AuthorizationPendingError", "AuthorizeRequest", "DeviceCode",
    "DeviceOAuth", "ExpiredTokenError", "InvalidClientError", "InvalidGrantError", "JWTAuth",
    "MissingExtraError", "OAuthError", "OAuthToken", "PKCEOAuth", "RefreshableAuth",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(coze_async.__all__) == EXPECTED
    for name in coze_async.__all__:
        assert hasattr(coze_async, name), name


def test_public_classes_and_functions_have_docstrings() -> None:
    for name in coze_async.__all__:
        obj = getattr(coze_async, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"


def test_events_are_frozen_and_slotted() -> None:
    from coze_async import Done, MessageDelta, UnknownEvent

    for cls in (MessageDelta, Done, UnknownEvent, coze_async.ChatCreated):
        assert attrs.has(cls)
        assert "__slots__" in cls.__dict__
    event = Done("[DONE]")
    try:
        event.data = "x"  # type: ignore[misc]
    except attrs.exceptions.FrozenInstanceError:
        pass
    else:
        raise AssertionError("events must be immutable")
