"""Record values of the run store: how one field becomes bytes or text and back.

A field is either a numpy array, stored as ``.npy`` bytes (``allow_pickle=False``
both ways: a store never executes code when read), or a JSON-able value (numbers,
strings, lists, dicts; numpy scalars become Python numbers). Everything is checked
here, before :class:`~xbarlab.store.RunStore` opens a transaction, so bad input is a
:class:`~xbarlab.errors.ConfigError` naming the field and never a partial write.
"""

from __future__ import annotations

import io
import json
import reprlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from xbarlab.errors import ConfigError


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def to_json(what: str, value: Any) -> str:
    """JSON text of ``value``; ConfigError naming ``what`` if it is not JSON-able."""
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{what} = {reprlib.repr(value)} cannot be stored ({exc}): use a numpy array "
            "(top-level record fields only) or numbers, strings, lists and dicts"
        ) from None


def encode_field(name: Any, value: Any) -> tuple[str, str | bytes]:
    """(kind, stored value) of one record field: ``.npy`` bytes or JSON text."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"record field name {name!r} must be a non-empty string without '/'")
    if not isinstance(value, np.ndarray):
        return "json", to_json(f"record field {name!r}", value)
    if value.dtype.hasobject:
        raise ConfigError(
            f"record field {name!r} is an array of dtype {value.dtype} (Python objects), "
            "which cannot be stored without pickle; convert it to a numeric, bool or string array"
        )
    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=False)
    return "npy", buf.getvalue()


def encode_fields(data: Mapping[str, Any]) -> list[tuple[int, str, str, str | bytes]]:
    """(position, name, kind, stored value) of every field, all checked before any write."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"record data must be a mapping of field names, not {type(data)}")
    return [(pos, name, *encode_field(name, v)) for pos, (name, v) in enumerate(data.items())]


def decode(kind: str, value: str | bytes) -> Any:
    """The value of one stored field from its kind (``"npy"`` or ``"json"``)."""
    if kind == "npy":
        return np.load(io.BytesIO(value), allow_pickle=False)
    return json.loads(value)
