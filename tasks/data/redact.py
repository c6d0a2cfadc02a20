"""Keep credentials out of what is shown or recorded: URLs, storage options, library messages."""

from __future__ import annotations

import re
from typing import overload
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["public_url", "mask_secrets", "scrub"]

# Query parameters of presigned and SAS URLs that are credentials, not addresses.
_SECRET_QUERY = re.compile(r"sig|signature|token|key|secret|password|credential", re.IGNORECASE)
# storage_options entries that hold credentials (s3fs key/secret/token, adlfs account_key, ...).
_SECRET_NAME = re.compile(r"key|secret|token|password|credential|connection_string|sas",
                          re.IGNORECASE)
# Parts of an Azure connection string that are credentials, wherever the string is quoted.
_CONNECTION_SECRET = re.compile(r"(AccountKey|SharedAccessSignature)=[^;\s'\"]+", re.IGNORECASE)


def public_url(url: str) -> str:
    """The URL without a user:password@ part or credential query parameters: safe to show."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive letter)
        return url
    user, at, host = parts.netloc.rpartition("@")
    # abfs://container@account.dfs.core.windows.net names a container, not a user:password.
    container = at and parts.scheme in ("abfs", "abfss", "az") and ":" not in user
    netloc = parts.netloc if container else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not _SECRET_QUERY.search(k)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@overload
def mask_secrets(options: dict[str, object]) -> dict[str, object]: ...


@overload
def mask_secrets(options: None) -> None: ...


def mask_secrets(options: object) -> object:
    """storage_options with credential values replaced by '***': safe to record or show."""
    # Any value is taken, as a nested option's value is masked by the same call; the overloads
    # say what callers pass (a mapping of options, or None) and get back.
    if isinstance(options, dict):
        return {k: "***" if _is_secret(k) and not isinstance(v, dict | bool) else mask_secrets(v)
                for k, v in options.items()}
    return options


def scrub(text: str, url: str, storage_options: dict[str, object] | None) -> str:
    """A library's message may quote the URL or a credential; show neither."""
    text = text.replace(url, public_url(url))
    for value in _secrets(storage_options or {}):
        text = text.replace(value, "***")
    return _CONNECTION_SECRET.sub(r"\1=***", text)


def _secrets(options: object, secret: bool = False) -> list[str]:
    if isinstance(options, dict):
        return [s for k, v in options.items() for s in _secrets(v, secret or _is_secret(k))]
    if not (secret and isinstance(options, str) and len(options) >= 4):
        return []
    # A connection string's key is a secret on its own, whether or not the whole is quoted.
    return [options, *(m.group(0).split("=", 1)[1] for m in _CONNECTION_SECRET.finditer(options))]


def _is_secret(name: object) -> bool:
    return bool(_SECRET_NAME.search(str(name)))
