"""Keep secrets out of everything the daemon says: logs, errors, MQTT and stats.

Camera URLs carry passwords (``rtsp://user:secret@host``), and a password may itself contain
``@`` or ``:``; config errors would echo a bad value back. Both go through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# user:password@ up to the LAST '@' before the host, so a password containing '@' is masked whole
_CREDENTIALS = re.compile(r"(://[^:/@\s]+:)[^\s/]*@")
SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "credential")


def mask_url(text: str) -> str:
    """``rtsp://user:secret@host`` -> ``rtsp://user:***@host`` (for anything that is logged)."""
    return _CREDENTIALS.sub(r"\1***@", text)


def is_secret_key(loc: Sequence[object]) -> bool:
    """Whether a config key path (``('mqtt', 'password')``) names a secret."""
    return any(isinstance(p, str) and any(s in p.lower() for s in SECRET_KEY_PARTS) for p in loc)


def shown_value(value: object, loc: Sequence[object]) -> str:
    """How a bad config value may be echoed in an error: never a secret, URLs masked."""
    if is_secret_key(loc):
        return " (value hidden; quote it in YAML if it is a number)"
    text = repr(value)
    return f" (got {mask_url(text)})"
