"""A local Coze OpenAPI emulator: a real aiohttp.web server speaking Coze's wire protocol.

Start it in a test and point any Coze client at it::

    from coze_async.emulator import Emulator, ECHO_BOT_ID

    async with Emulator() as emu:
        ...  # base_url=emu.url, token=emu.token, bot_id=ECHO_BOT_ID

or from a shell: ``python -m coze_async.emulator --port 8080``.

Bots: :data:`ECHO_BOT_ID` (and any unknown bot id) echoes "你说：…", :data:`TOOL_BOT_ID` asks
for a tool call, :data:`AUDIO_BOT_ID` adds audio deltas, and
:meth:`Emulator.add_scripted_bot` streams any frames verbatim. Faults are chosen per request
with the :data:`FAULT_HEADER` header (see :mod:`coze_async.emulator.faults`).

The package imports nothing from the rest of ``coze_async`` on purpose: it is the yardstick
the SDK is tested against and must not share its bugs.
"""

from .bots import AUDIO_BOT_ID, ECHO_BOT_ID, TOOL_BOT_ID, Bot, Turn, TurnContext
from .faults import FAULT_NAMES, FaultSpec, FaultSpecError, parse_faults
from .server import Emulator, RecordedRequest, RequestContext
from .wire import DEFAULT_TOKEN, FAULT_HEADER, LOGID_HEADER, REPEAT_HEADER, ApiError, sse_frame

__all__ = [
    "AUDIO_BOT_ID",
    "DEFAULT_TOKEN",
    "ECHO_BOT_ID",
    "FAULT_HEADER",
    "FAULT_NAMES",
    "LOGID_HEADER",
    "REPEAT_HEADER",
    "TOOL_BOT_ID",
    "ApiError",
    "Bot",
    "Emulator",
    "FaultSpec",
    "FaultSpecError",
    "RecordedRequest",
    "RequestContext",
    "Turn",
    "TurnContext",
    "parse_faults",
    "sse_frame",
]
