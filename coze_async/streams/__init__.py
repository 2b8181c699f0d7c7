"""The SDK's streams: one cursor over an answer, with several views (events, text,
snapshot, final). :mod:`.base` holds the lifecycle and terminal rules shared by every stream;
:mod:`.chat` and :mod:`.workflow` the two SSE families."""

from .base import EventStream
from .chat import ChatStream
from .workflow import WorkflowStream

__all__ = ["ChatStream", "EventStream", "WorkflowStream"]
