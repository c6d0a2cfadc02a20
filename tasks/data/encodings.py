"""Text encoding names, checked before any table is read (the config, `automl predict`)."""

from __future__ import annotations

import codecs

__all__ = ["UNKNOWN_ENCODING", "known_encoding"]

UNKNOWN_ENCODING = "an unknown text encoding; use e.g. utf-8, cp1252, latin-1 or utf-16"


def known_encoding(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True
