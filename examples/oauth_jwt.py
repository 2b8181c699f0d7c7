"""Chat as a Coze service app, with JWT auth (OAuth access keys) instead of a personal token.

Runs as is, with no account: it generates an RSA key pair, starts the local Coze emulator
in-process, registers the public key there as a service app's key, and chats through
``AsyncCoze(auth=JWTAuth(...))``, which exchanges a signed JWT for a ``czs_`` access token
and refreshes it before it expires::

    pip install 'coze-async[jwt]'
    python examples/oauth_jwt.py            # says "早上好"
    python examples/oauth_jwt.py 你好       # says "你好"

Against the real Coze: create a service app ("服务类应用") in the console, add a public key,
keep the downloaded ``private_key.pem``, and build the auth from the app page's values::

    JWTAuth(
        client_id="11700...",                   # the app id
        private_key=Path("private_key.pem").read_text(),
        public_key_id="_o8v...",                # the public key's fingerprint
    )

(the default host is api.coze.cn; an app made on coze.com needs
``base_url=COZE_COM_BASE_URL``, or Coze answers ``invalid_client``).
"""

from __future__ import annotations

import sys

import anyio

try:
    import jwt  # noqa: F401  (JWTAuth signs with it; fail here, before anything starts)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError as exc:
    # A one-line pointer to the extra instead of a traceback about a missing module.
    missing = (exc.name or "?").partition(".")[0]
    raise SystemExit(
        f"examples/oauth_jwt.py needs the jwt extra ({missing} is not installed): "
        "pip install 'coze-async[jwt]'"
    ) from None

from coze_async import AsyncCoze, JWTAuth, Message
from coze_async.emulator import ECHO_BOT_ID, Emulator

CLIENT_ID = "1170000000001"
KEY_ID = "example-key-1"


def make_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair as PEM (private, public): what Coze's console gives you."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def main(text: str) -> None:
    """Register the app's key with the emulator, then chat as the app."""
    private_pem, public_pem = make_key_pair()
    async with Emulator() as emu:
        emu.oauth.add_jwt_app(client_id=CLIENT_ID, public_key=public_pem, kid=KEY_ID)
        auth = JWTAuth(
            client_id=CLIENT_ID,
            private_key=private_pem,
            public_key_id=KEY_ID,
            session_name="user-1",  # isolates this end user's conversations
        )
        async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
            stream = coze.chat.stream(
                bot_id=ECHO_BOT_ID, user_id="user-1", messages=[Message.user(text)]
            )
            async with stream:
                async for piece in stream.text():
                    print(piece, end="", flush=True)
            print()
            token = await auth.get_token()  # the cached token: no second exchange
            print(f"authenticated with {token!r}")
        print(f"token exchanges: {emu.oauth.exchanges['jwt']}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "早上好")
