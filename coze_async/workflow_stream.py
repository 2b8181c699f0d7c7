"""Kept for imports written before :mod:`coze_async.streams`: the workflow stream."""

from .streams.workflow import WorkflowStream

__all__ = ["WorkflowStream"]
