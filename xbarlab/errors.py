"""The xbarlab error hierarchy.

Every error xbarlab raises on purpose derives from :class:`XbarlabError`, so a
lab script can catch "anything xbarlab refused" in one clause. Errors about bad
values also derive from :class:`ValueError`, so generic callers still work.
Messages say what was wrong, the offending value, the allowed range and, where
useful, what to do instead.
"""


class XbarlabError(Exception):
    """Base class of every error raised on purpose by xbarlab."""


class ConfigError(XbarlabError, ValueError):
    """A parameter, preset or configuration file is invalid."""


class SpecError(ConfigError):
    """A backend spec string (``scheme:target?key=value``) cannot be understood."""


class SelectionError(XbarlabError, ValueError):
    """A device selection (mask or index arrays) does not fit the array."""


class SafetyError(XbarlabError, ValueError):
    """An operation would exceed a safety limit; nothing was sent to the device.

    Attributes
    ----------
    limit : str
        Name of the :class:`~xbarlab.limits.SafetyLimits` field that was violated.
    value : float
        The offending value, in SI units.
    allowed : float
        The limit value, in SI units.
    """

    def __init__(
        self, limit: str, value: float, allowed: float, unit: str, what: str, below: bool = False
    ):
        self.limit = limit
        self.value = value
        self.allowed = allowed
        relation, fix = ("is below", "Raise") if below else ("exceeds", "Lower")
        unit = f" {unit}" if unit else ""
        super().__init__(
            f"{what} = {value:.6g}{unit} {relation} safety limit {limit} = {allowed:.6g}{unit}; "
            f"nothing was sent. {fix} the value or, if the chip allows it, change the limit "
            "in its ChipInfo."
        )


class BackendError(XbarlabError):
    """A backend failed to carry out an operation (connection, protocol, device)."""


class InstrumentError(XbarlabError):
    """An instrument reported an error, refused a value, or could not be reached.

    Attributes
    ----------
    code : int or None
        The instrument's error code (SCPI ``SYST:ERR?`` or TSP ``errorqueue``), if any.
    instrument : str
        What raised it (driver name and resource string), for the message.
    """

    def __init__(self, message: str, *, code: int | None = None, instrument: str = ""):
        self.code = code
        self.instrument = instrument
        super().__init__(f"{instrument}: {message}" if instrument else message)


class IdentityError(InstrumentError):
    """The instrument at a resource string is not the model the driver expects."""
