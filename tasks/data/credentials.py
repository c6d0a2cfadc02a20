"""Storage credentials from a Prefect Secret block: named in the config, resolved at the last
moment, so the values are never a flow parameter, a log line or an MLflow record."""

from __future__ import annotations

import json

from tasks.errors import ConfigError

__all__ = ["storage_options"]


def storage_options(
    explicit: dict[str, object] | None, secret_name: str | None
) -> dict[str, object] | None:
    """The options to hand fsspec: the Secret block's JSON object, under explicit options."""
    if not secret_name:
        return explicit
    return _merge(_secret_options(secret_name), explicit or {})


def _secret_options(name: str) -> dict[str, object]:
    from prefect.blocks.system import Secret

    try:
        # _sync=True: read synchronously even inside an event loop. Prefect's async_dispatch
        # takes the keyword but its declared signature lacks it, and says a coroutine may
        # come back.
        block = Secret.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:  # Prefect's "Unable to find block document named ..."
        raise ConfigError(
            f"storage_secret '{name}' is not a Secret block on the Prefect API; create it, e.g. "
            f"Secret(value={{\"key\": ..., \"secret\": ...}}).save('{name}')"
        ) from None
    assert isinstance(block, Secret)  # run synchronously: the block, not a coroutine
    value = block.get()
    if isinstance(value, str):  # a JSON object saved as text is parsed by get(); this is not one
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        # Never echo the value: it is a secret even when it is the wrong shape.
        raise ConfigError(
            f"storage_secret '{name}' must hold a JSON object of storage options, "
            'e.g. {"connection_string": "..."} or {"key": "...", "secret": "..."}'
        )
    return value


def _merge(base: dict[str, object], over: dict[str, object]) -> dict[str, object]:
    """Nested dicts (client_kwargs) merge key by key; explicit values win."""
    merged = dict(base)
    for key, value in over.items():
        inner = merged.get(key)
        if isinstance(value, dict) and isinstance(inner, dict):
            merged[key] = _merge(inner, value)
        else:
            merged[key] = value
    return merged
