"""OAuth for Coze: JWT service-app auth, and the PKCE (web) and device-code user flows.

* :class:`JWTAuth` is an auth for :class:`~coze_async.AsyncCoze` (``auth=JWTAuth(...)``): it
  signs an RS256 JWT with the service app's private key, exchanges it for a ``czs_`` access
  token, caches the token until shortly before it expires and refreshes it single-flight
  (however many tasks need a token at once, one exchange runs and all of them await it).
  After a 4100 / HTTP 401 the transport asks it to drop the rejected token and retries once.
* :class:`PKCEOAuth` builds the browser authorization URL (S256 challenge), exchanges the
  code that comes back and refreshes; :class:`DeviceOAuth` runs the device-code flow for
  devices without a browser. Both return :class:`OAuthToken`.

Wire facts: coze-api.md §1.3. ``expires_in`` is an absolute Unix timestamp, not a duration.

Layout: :mod:`._common` (the token and request types, answer parsing), :mod:`._endpoint`
(the token-endpoint POSTs on :mod:`coze_async._http`, and their error bodies mapped to
:class:`~coze_async.errors.OAuthError`), :mod:`.jwt`, :mod:`.pkce` and :mod:`.device`.

Signing needs PyJWT and cryptography: ``pip install 'coze-async[jwt]'``. Without them,
creating a :class:`JWTAuth` raises :class:`~coze_async.errors.MissingExtraError`; the user
flows need nothing extra.
"""

from __future__ import annotations

from ._common import (
    DEVICE_GRANT_TYPE,
    JWT_GRANT_TYPE,
    AuthorizeRequest,
    DeviceCode,
    OAuthToken,
)
from .device import DeviceOAuth
from .jwt import JWTAuth
from .pkce import PKCEOAuth, code_challenge

__all__ = [
    "DEVICE_GRANT_TYPE",
    "JWT_GRANT_TYPE",
    "AuthorizeRequest",
    "DeviceCode",
    "DeviceOAuth",
    "JWTAuth",
    "OAuthToken",
    "PKCEOAuth",
    "code_challenge",
]
