"""Coze's quotas as data: plans, buckets, and which buckets each SDK call draws from.

Figures from coze-api.md §6 (coze.cn "API 介绍", Dec 2025):

=======================  ==========  ===========  ===================  =====================
limit                    free        pro          enterprise standard  enterprise flagship
=======================  ==========  ===========  ===================  =====================
chat QPS                 20          100          200                  500
workflow family QPS      50          100          200                  500
file upload QPS          10          10           20                   20
model RPM (per user)     300         1000         5000                 12000
lifetime API calls       500         unlimited    unlimited            unlimited
=======================  ==========  ===========  ===================  =====================

The chat benefit also covers retrieve and the chat message list; the workflow family is run,
stream run, resume, chatflow, run history and output-node results. Chat, submit-tool-outputs,
workflow run/stream/resume and chatflow also draw one token from the model RPM bucket, so such a
call needs two buckets at once. Endpoints with no documented quota (conversations, messages,
file retrieve) draw from none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from ..errors import InvalidArgumentError

__all__ = ["ENDPOINT_BUCKETS", "Bucket", "Plan", "buckets_for"]

#: Bucket names.
CHAT = "chat"
WORKFLOW = "workflow"
UPLOAD = "upload"
MODEL = "model_rpm"


@attrs.frozen
class Bucket:
    """One limit: at most ``limit`` calls in any window of ``period`` seconds."""

    name: str
    limit: int
    period: float

    def __attrs_post_init__(self) -> None:
        if self.limit < 1:
            raise InvalidArgumentError(f"bucket {self.name!r}: limit must be >= 1")
        if self.period <= 0:
            raise InvalidArgumentError(f"bucket {self.name!r}: period must be > 0")


@attrs.frozen
class Plan:
    """A Coze plan's client-side limits. Use the constants or :meth:`custom`.

    ``lifetime_calls`` is the free plan's lifetime API call allowance (500): when a budget
    store is configured, the limiter refuses calls before the account would be locked.
    """

    name: str
    buckets: tuple[Bucket, ...]
    lifetime_calls: int | None = None

    #: 个人免费版: 20 chat QPS, 50 workflow QPS, 10 upload QPS, 300 RPM, 500 calls ever.
    PERSONAL_FREE: ClassVar[Plan]
    #: 个人进阶版: 100 / 100 / 10 QPS, 1000 RPM.
    PERSONAL_PRO: ClassVar[Plan]
    #: 团队版: 200 / 200 / 20 QPS, 5000 RPM.
    ENTERPRISE_STANDARD: ClassVar[Plan]
    #: 企业版: 500 / 500 / 20 QPS, 12000 RPM.
    ENTERPRISE_FLAGSHIP: ClassVar[Plan]

    def bucket(self, name: str) -> Bucket | None:
        """The bucket called ``name`` (``None`` if this plan has none)."""
        for b in self.buckets:
            if b.name == name:
                return b
        return None

    @classmethod
    def custom(
        cls,
        *,
        chat_qps: int,
        workflow_qps: int,
        upload_qps: int,
        model_rpm: int,
        lifetime_calls: int | None = None,
        name: str = "custom",
    ) -> Plan:
        """A plan with bought expansions (or any other limits)."""
        return cls(
            name=name,
            buckets=(
                Bucket(CHAT, chat_qps, 1.0),
                Bucket(WORKFLOW, workflow_qps, 1.0),
                Bucket(UPLOAD, upload_qps, 1.0),
                Bucket(MODEL, model_rpm, 60.0),
            ),
            lifetime_calls=lifetime_calls,
        )


Plan.PERSONAL_FREE = Plan.custom(
    name="personal_free",
    chat_qps=20,
    workflow_qps=50,
    upload_qps=10,
    model_rpm=300,
    lifetime_calls=500,
)
Plan.PERSONAL_PRO = Plan.custom(
    name="personal_pro", chat_qps=100, workflow_qps=100, upload_qps=10, model_rpm=1000
)
Plan.ENTERPRISE_STANDARD = Plan.custom(
    name="enterprise_standard", chat_qps=200, workflow_qps=200, upload_qps=20, model_rpm=5000
)
Plan.ENTERPRISE_FLAGSHIP = Plan.custom(
    name="enterprise_flagship", chat_qps=500, workflow_qps=500, upload_qps=20, model_rpm=12000
)

#: Every SDK operation (``Call.endpoint``) and the buckets it draws one token from. A test
#: checks that every endpoint the SDK sends is listed here, so a new call cannot slip past
#: the limiter unnoticed.
ENDPOINT_BUCKETS: Mapping[str, tuple[str, ...]] = {
    # chat: the chat benefit covers chat, retrieve and the chat message list
    "chat.create": (CHAT, MODEL),
    "chat.stream": (CHAT, MODEL),
    "chat.submit_tool_outputs": (CHAT, MODEL),
    "chat.submit_tool_outputs_stream": (CHAT, MODEL),
    "chat.retrieve": (CHAT,),
    "chat.messages": (CHAT,),
    "chat.cancel": (CHAT,),
    # workflow family
    "workflows.run": (WORKFLOW, MODEL),
    "workflows.run_async": (WORKFLOW, MODEL),
    "workflows.stream": (WORKFLOW, MODEL),
    "workflows.resume": (WORKFLOW, MODEL),
    "workflows.resume_stream": (WORKFLOW, MODEL),
    "workflows.chat": (WORKFLOW, MODEL),
    "workflows.runs.retrieve": (WORKFLOW,),
    "workflows.node_output": (WORKFLOW,),
    "workflows.retrieve": (),  # workflow metadata: no documented QPS
    "workflows.list": (),
    # files
    "files.upload": (UPLOAD,),
    "files.retrieve": (),
    # conversations and messages: no documented QPS
    "conversations.create": (),
    "conversations.retrieve": (),
    "conversations.list": (),
    "conversations.update": (),
    "conversations.delete": (),
    "conversations.clear": (),
    "messages.create": (),
    "messages.list": (),
    "messages.retrieve": (),
    "messages.update": (),
    "messages.delete": (),
    "messages.set_feedback": (),
    "messages.delete_feedback": (),
}


def buckets_for(endpoint: str) -> tuple[str, ...]:
    """The bucket names ``endpoint`` draws from; an unlisted endpoint is a programming error."""
    try:
        return ENDPOINT_BUCKETS[endpoint]
    except KeyError:
        raise InvalidArgumentError(
            f"endpoint {endpoint!r} is not in the quota table (coze_async.ratelimit.plans)"
        ) from None
