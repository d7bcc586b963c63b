"""Shared handling of parameter dataclasses (device models, peripherals, ...)."""

from __future__ import annotations

from dataclasses import fields, replace

from xbarlab.errors import ConfigError


def field_names(cls) -> tuple[str, ...]:
    """Names of a dataclass's fields, in declaration order."""
    return tuple(f.name for f in fields(cls))


def with_changes(params, what: str, **changes):
    """A copy of dataclass ``params`` with some fields changed.

    Unknown names raise ConfigError listing the valid ones; the dataclass's own
    validation runs on the copy. ``what`` names the parameters in the message.
    """
    valid = field_names(type(params))
    unknown = sorted(set(changes) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {what}(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return replace(params, **changes)
