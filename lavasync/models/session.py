"""Session and SessionUpdate (``PATCH /v4/sessions/{id}``, PROTOCOL.md §3.10, §5.4).

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

from dataclasses import dataclass, field
from typing import Union

from ._base import UNSET, Unset, WireModel, unset_meta

__all__ = ["Session", "SessionUpdate"]


@dataclass
class Session(WireModel):
    """The session settings in effect: ``timeout`` is in **seconds**."""

    resuming: bool
    timeout: int


@dataclass
class SessionUpdate(WireModel):
    """Body of ``PATCH /v4/sessions/{id}``; UNSET fields are not sent (``{}`` just reads)."""

    resuming: Union[bool, Unset] = field(default=UNSET, metadata=unset_meta())
    timeout: Union[int, Unset] = field(default=UNSET, metadata=unset_meta())

    def validate(self) -> None:
        """Raise ValueError unless ``resuming`` is a bool and ``timeout`` an int >= 0 seconds."""
        if self.resuming is not UNSET and not isinstance(self.resuming, bool):
            raise ValueError(f"resuming must be a bool, not {self.resuming!r}")
        timeout = self.timeout
        if timeout is not UNSET:
            if isinstance(timeout, bool) or not isinstance(timeout, int):
                raise ValueError(f"timeout must be an int number of seconds, not {timeout!r}")
            if timeout < 0:
                raise ValueError(f"timeout must be >= 0 seconds, not {timeout}")
