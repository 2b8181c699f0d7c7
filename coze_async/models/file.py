"""The uploaded-file model (coze-api.md §5)."""

from __future__ import annotations

import attrs

__all__ = ["File"]


@attrs.frozen
class File:
    """A file uploaded to Coze; pass ``id`` as ``file_id`` in multimodal messages.

    Files are kept for three months and only the uploader can use them. ``bytes`` is the size
    Coze counted, ``created_at`` a Unix timestamp in seconds.
    """

    id: str
    bytes: int | None = None
    file_name: str = ""
    created_at: int | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
