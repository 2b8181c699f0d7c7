"""Kept for imports written before :mod:`coze_async.streams`: the chat stream and the base."""

from .streams.base import EventStream
from .streams.chat import ChatStream

__all__ = ["ChatStream", "EventStream"]
