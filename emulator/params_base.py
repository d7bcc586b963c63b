"""What the emulator's parameter dataclasses share: copies, dicts, presets, validation.

The device models (:mod:`~xbarlab.emulator.pcm_params`,
:mod:`~xbarlab.emulator.rram_params`, :mod:`~xbarlab.emulator.mram_params`) and the
periphery (:mod:`~xbarlab.emulator.peripherals`) declare their parameters as frozen
dataclasses with units and sources; the machinery around them is written once here:

- :class:`ModelParams`: ``with_overrides`` (a validated copy; unknown names refused),
  ``to_dict`` and ``field_names``;
- :class:`DeviceParams`: plus JSON preset files tagged with the device technology
  (``save``/``load``), and :func:`load_preset` for named presets or files;
- :func:`require`: one validation rule over several fields, with the field named
  (:func:`finite_number` and :func:`strict_number` are common rules).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from xbarlab import config
from xbarlab.config import with_changes
from xbarlab.errors import ConfigError

P = TypeVar("P", bound="DeviceParams")


class ModelParams:
    """Mixin of a frozen parameter dataclass: copies with changes, dict, field names.

    A subclass sets ``_what``: how error messages name its fields ("PCM parameter").
    """

    _what: ClassVar[str] = "parameter"

    def with_overrides(self, **changes):
        """A copy with some fields changed; unknown names raise ConfigError."""
        return with_changes(self, self._what, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The parameter names, in declaration order."""
        return config.field_names(cls)


class DeviceParams(ModelParams):
    """:class:`ModelParams` of a device model, plus JSON preset files.

    A subclass sets ``technology`` (the tag of its preset files, "pcm") and ``_what``.
    Missing fields of a file keep their defaults; a file of another technology is refused.
    """

    technology: ClassVar[str] = ""

    @classmethod
    def _label(cls) -> str:
        """The technology as written in messages ("PCM")."""
        return cls.technology.upper()

    def save(self, path: str | Path) -> None:
        """Write the parameters as a JSON preset file."""
        doc = {"technology": self.technology, "params": asdict(self)}
        Path(path).write_text(json.dumps(doc, indent=2))

    @classmethod
    def load(cls: type[P], path: str | Path) -> P:
        """Read a JSON preset file written by :meth:`save` (missing fields keep defaults)."""
        label = cls._label()
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {label} preset {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{label} preset {path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("technology") != cls.technology:
            raise ConfigError(
                f"{path} is not {_article(label)} {label} preset "
                f"(expected technology: {cls.technology})"
            )
        return cls().with_overrides(**doc.get("params", {}))


def load_preset(cls: type[P], presets: Mapping[str, P], name_or_path: str) -> P:
    """A named preset of ``presets``, or a preset JSON file if the argument is a path."""
    if name_or_path in presets:
        return presets[name_or_path]
    if name_or_path.endswith(".json") or Path(name_or_path).exists():
        return cls.load(name_or_path)
    raise ConfigError(
        f"unknown {cls._label()} preset {name_or_path!r}; use one of {', '.join(presets)} "
        "or a JSON file path"
    )


def require(params: Any, names: Iterable[str], ok: Callable[[Any], bool], requirement: str) -> None:
    """Raise ConfigError for the first field of ``names`` whose value fails ``ok``:
    "<class>.<name> must be <requirement>, got <value>"."""
    for name in names:
        value = getattr(params, name)
        if not ok(value):
            raise ConfigError(
                f"{type(params).__name__}.{name} must be {requirement}, got {value!r}"
            )


def finite_number(value: Any) -> bool:
    """True for a finite int or float (a bool counts: flag fields are 0 or 1)."""
    return isinstance(value, int | float) and math.isfinite(value)


def strict_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _article(label: str) -> str:
    """'an' before an initialism whose first letter is spoken with a vowel sound (an
    RRAM, an MRAM), else 'a' (a PCM)."""
    return "an" if label[:1] in set("AEFHILMNORSX") else "a"
