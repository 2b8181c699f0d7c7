"""A local Coze OpenAPI emulator: a real aiohttp.web server speaking Coze's wire protocol.

Start it in a test and point any Coze client at it::

    from coze_async.emulator import Emulator, ECHO_BOT_ID

    async with Emulator() as emu:
        ...  # base_url=emu.url, token=emu.token, bot_id=ECHO_BOT_ID

or from a shell: ``python -m coze_async.emulator --port 8080``.

Conversations, messages, sections, feedback and file uploads are served too, from the same
in-memory store as chats; every token (``Emulator(tokens=[...])``, :meth:`Emulator.add_token`)
is a separate user who sees only what it created.

Bots: :data:`ECHO_BOT_ID` echoes "你说：…", :data:`TOOL_BOT_ID` asks for a tool call,
:data:`AUDIO_BOT_ID` adds audio deltas, and :meth:`Emulator.add_scripted_bot` streams any
frames verbatim. Any other ``bot_id`` answers 4200 ("Requested resource bot_id=… does not
exist", as Coze does) unless ``Emulator(accept_any_bot=True)`` lets the echo bot answer it.
Faults are chosen per request with the :data:`FAULT_HEADER` header (see
:mod:`coze_async.emulator.faults`).

Workflows (see :mod:`coze_async.emulator.workflows`): :data:`ECHO_WORKFLOW_ID`,
:data:`STREAM_WORKFLOW_ID` (multi-node streaming), :data:`QA_WORKFLOW_ID` (interrupts and
resumes), :data:`FAILING_WORKFLOW_ID`, :data:`SLOW_WORKFLOW_ID` (PING heartbeats) and the
chatflow :data:`CHATFLOW_ID`; :meth:`Emulator.add_workflow` registers more and
:meth:`Emulator.add_scripted_workflow` streams any frames verbatim.

OAuth (see :mod:`coze_async.emulator.oauth`): ``emu.oauth`` serves the token endpoint for the
JWT, PKCE / web and device-code flows (``emu.oauth.add_jwt_app(...)``, ``issue_code``,
``approve_device``, ``token_ttl``, ``exchanges``); the ``czs_`` / ``czu_`` tokens it issues are
accepted until they expire.

The package imports nothing from the rest of ``coze_async`` on purpose: it is the yardstick
the SDK is tested against and must not share its bugs.
"""

from .bots import AUDIO_BOT_ID, ECHO_BOT_ID, TOOL_BOT_ID, Bot, Turn, TurnContext
from .faults import FAULT_NAMES, FaultSpec, FaultSpecError, parse_faults
from .oauth import OAuthServer
from .server import Emulator, RecordedRequest, RequestContext
from .wire import DEFAULT_TOKEN, FAULT_HEADER, LOGID_HEADER, REPEAT_HEADER, ApiError, sse_frame
from .workflows import (
    CHATFLOW_ID,
    ECHO_WORKFLOW_ID,
    FAILING_WORKFLOW_ID,
    MAX_RESUMES,
    QA_WORKFLOW_ID,
    SLOW_WORKFLOW_ID,
    STREAM_WORKFLOW_ID,
    Chatflow,
    QuestionWorkflow,
    Script,
    SlowWorkflow,
    Workflow,
)

__all__ = [
    "AUDIO_BOT_ID",
    "CHATFLOW_ID",
    "DEFAULT_TOKEN",
    "ECHO_BOT_ID",
    "ECHO_WORKFLOW_ID",
    "FAILING_WORKFLOW_ID",
    "FAULT_HEADER",
    "FAULT_NAMES",
    "LOGID_HEADER",
    "MAX_RESUMES",
    "QA_WORKFLOW_ID",
    "REPEAT_HEADER",
    "SLOW_WORKFLOW_ID",
    "STREAM_WORKFLOW_ID",
    "TOOL_BOT_ID",
    "ApiError",
    "Bot",
    "Chatflow",
    "Emulator",
    "FaultSpec",
    "FaultSpecError",
    "OAuthServer",
    "QuestionWorkflow",
    "RecordedRequest",
    "RequestContext",
    "Script",
    "SlowWorkflow",
    "Turn",
    "TurnContext",
    "Workflow",
    "parse_faults",
    "sse_frame",
]
