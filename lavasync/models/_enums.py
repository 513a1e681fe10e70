"""The base of lavasync's wire enums: str enums that stay plain strings for every other use.

A member compares equal to (and hashes like) its wire string, prints as it (``str()``, f-strings,
``json.dumps``), and ``parse`` keeps a value the enum does not know as the raw string, so a newer
server or a plugin never breaks parsing. Members are immutable: safe to share between threads.
"""

import enum
from typing import TypeVar, Union, cast

__all__ = ["WireEnum"]

_E = TypeVar("_E", bound="WireEnum")


class WireEnum(str, enum.Enum):
    """A ``str`` enum of wire values (like Python 3.11's ``StrEnum``, on every Python)."""

    # str's own text in str() and f-strings: "finished", never "TrackEndReason.FINISHED"
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    @classmethod
    def parse(cls: type[_E], value: str) -> Union[_E, str]:
        """The member whose value is ``value``, or ``value`` itself when the enum lacks it."""
        return cast("Union[_E, str]", cls._value2member_map_.get(value, value))
