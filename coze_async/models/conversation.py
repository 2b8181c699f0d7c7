"""Conversation and section models (coze-api.md §3).

A conversation holds messages; a *section* is one stretch of its context. Clearing a
conversation's context (``coze.conversations.clear``) starts a new section: older messages stay
listable but the bot no longer sees them. ``Conversation.last_section_id`` is the current one,
and every chat and message records the section it belongs to (``section_id``).
"""

from __future__ import annotations

from enum import StrEnum

import attrs

__all__ = ["Conversation", "FeedbackType", "Section"]


@attrs.frozen
class Conversation:
    """A conversation as Coze reports it. ``logid`` is set on objects returned by calls.

    ``name`` defaults to the first message's text when none was given at creation;
    ``connector_id`` is the channel (``"1024"`` for the API).
    """

    id: str
    name: str = ""
    meta_data: dict[str, str] | None = None
    creator_id: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    last_section_id: str | None = None
    connector_id: str | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class Section:
    """A context section, as returned by ``conversations.clear``: the new current section."""

    id: str
    conversation_id: str = ""
    logid: str | None = attrs.field(default=None, eq=False, repr=False)


class FeedbackType(StrEnum):
    """Feedback on a bot answer (``messages.set_feedback``)."""

    LIKE = "like"
    UNLIKE = "unlike"
