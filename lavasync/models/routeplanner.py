"""Route planner status (``GET /v4/routeplanner/status``, PROTOCOL.md §3.11).

The ``class`` key picks the status type; :func:`parse_route_planner` does that dispatch. Big
numbers (block size, indexes) come as decimal strings and stay strings; the ``*_int``
properties convert them.

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

from ._base import WireFormatError, WireModel, _meta
from ._enums import WireEnum

__all__ = [
    "BalancingIpRoutePlannerDetails",
    "BalancingIpRoutePlannerStatus",
    "FailingAddress",
    "IpBlock",
    "IpBlockType",
    "NanoIpRoutePlannerDetails",
    "NanoIpRoutePlannerStatus",
    "RotatingIpRoutePlannerDetails",
    "RotatingIpRoutePlannerStatus",
    "RotatingNanoIpRoutePlannerDetails",
    "RotatingNanoIpRoutePlannerStatus",
    "RoutePlannerDetails",
    "RoutePlannerFreeAddress",
    "RoutePlannerStatus",
    "parse_route_planner",
]


class IpBlockType(WireEnum):
    """The ``type`` of an IP block: a ``str`` enum, equal to the wire strings."""

    INET4 = "Inet4Address"
    INET6 = "Inet6Address"


def _ip_block_type(value: Any) -> Union[IpBlockType, str]:
    if not isinstance(value, str):
        raise ValueError(f"ipBlock type is not a string: {value!r}")
    return IpBlockType.parse(value)


@dataclass
class IpBlock(WireModel):
    """The IP block in use: ``type`` is an :class:`IpBlockType` (or the raw string if unknown)."""

    type: Union[IpBlockType, str] = field(
        metadata=_meta({"decode": _ip_block_type}, decoder=_ip_block_type)
    )
    size: str

    @property
    def size_int(self) -> int:
        """The block size as an int (it can exceed 64 bits)."""
        return int(self.size)


@dataclass
class FailingAddress(WireModel):
    """An address marked failing: ``failing_timestamp`` is epoch ms, ``failing_time`` text."""

    failing_address: str
    failing_timestamp: int
    failing_time: str


@dataclass
class RoutePlannerDetails(WireModel):
    """What every planner reports (all that ``BalancingIpRoutePlanner`` reports)."""

    ip_block: IpBlock
    failing_addresses: list[FailingAddress]


@dataclass
class BalancingIpRoutePlannerDetails(RoutePlannerDetails):
    """Details of ``BalancingIpRoutePlanner`` (nothing beyond the common ones)."""


@dataclass
class RotatingIpRoutePlannerDetails(RoutePlannerDetails):
    """Details of ``RotatingIpRoutePlanner``; the indexes are decimal strings."""

    rotate_index: str
    ip_index: str
    current_address: str


@dataclass
class NanoIpRoutePlannerDetails(RoutePlannerDetails):
    """Details of ``NanoIpRoutePlanner``; the index is a decimal string (big integer)."""

    current_address_index: str

    @property
    def current_address_index_int(self) -> int:
        """``current_address_index`` as an int."""
        return int(self.current_address_index)


@dataclass
class RotatingNanoIpRoutePlannerDetails(RoutePlannerDetails):
    """Details of ``RotatingNanoIpRoutePlanner``; the indexes are decimal strings."""

    block_index: str
    current_address_index: str

    @property
    def current_address_index_int(self) -> int:
        """``current_address_index`` as an int."""
        return int(self.current_address_index)


def _lenient_details(value: Any) -> Any:
    """Details of an unknown planner: typed if they have the common shape, else as they came."""
    if isinstance(value, Mapping):
        try:
            return RoutePlannerDetails.from_wire(value)
        except WireFormatError:
            return dict(value)
    return value


def _encode_details(value: Any) -> Any:
    return value.to_wire() if isinstance(value, WireModel) else value


_CLASS = "class"


@dataclass
class RoutePlannerStatus(WireModel):
    """A route planner status; ``class_name`` is the wire ``class`` key.

    This base class is used as is for planner classes lavasync does not know: ``details`` is
    then a :class:`RoutePlannerDetails` (unknown keys kept) or, if it does not even have the
    common shape, the raw dict.
    """

    #: The wire ``class`` this type stands for (None on the generic base).
    CLASS: ClassVar[Optional[str]] = None

    class_name: str = field(metadata=_meta({}, field_name=_CLASS))
    details: Union[RoutePlannerDetails, dict[str, Any]] = field(
        metadata=_meta(
            {"decode": _lenient_details, "encode": _encode_details}, decoder=_lenient_details
        )
    )


@dataclass
class RotatingIpRoutePlannerStatus(RoutePlannerStatus):
    """Status of ``RotatingIpRoutePlanner`` (config strategy ``RotateOnBan``)."""

    CLASS: ClassVar[Optional[str]] = "RotatingIpRoutePlanner"
    details: RotatingIpRoutePlannerDetails


@dataclass
class NanoIpRoutePlannerStatus(RoutePlannerStatus):
    """Status of ``NanoIpRoutePlanner`` (config strategy ``NanoSwitch``)."""

    CLASS: ClassVar[Optional[str]] = "NanoIpRoutePlanner"
    details: NanoIpRoutePlannerDetails


@dataclass
class RotatingNanoIpRoutePlannerStatus(RoutePlannerStatus):
    """Status of ``RotatingNanoIpRoutePlanner`` (config strategy ``RotatingNanoSwitch``)."""

    CLASS: ClassVar[Optional[str]] = "RotatingNanoIpRoutePlanner"
    details: RotatingNanoIpRoutePlannerDetails


@dataclass
class BalancingIpRoutePlannerStatus(RoutePlannerStatus):
    """Status of ``BalancingIpRoutePlanner`` (config strategy ``LoadBalance``)."""

    CLASS: ClassVar[Optional[str]] = "BalancingIpRoutePlanner"
    details: BalancingIpRoutePlannerDetails


_STATUS_TYPES: dict[str, type[RoutePlannerStatus]] = {
    cls.CLASS: cls
    for cls in (
        RotatingIpRoutePlannerStatus,
        NanoIpRoutePlannerStatus,
        RotatingNanoIpRoutePlannerStatus,
        BalancingIpRoutePlannerStatus,
    )
    if cls.CLASS is not None
}


@dataclass
class RoutePlannerFreeAddress(WireModel):
    """Body of ``POST /v4/routeplanner/free/address``: the address to unmark, e.g. ``1.0.0.1``."""

    address: str


def parse_route_planner(data: Optional[Mapping[str, Any]]) -> Optional[RoutePlannerStatus]:
    """The typed status for a ``routeplanner/status`` body; None for no body (204) or ``{}``.

    An unknown ``class`` gives a plain :class:`RoutePlannerStatus`. Raises WireFormatError for
    a body without a string ``class`` or with malformed details.
    """
    if data is None or (isinstance(data, Mapping) and not data):
        return None
    if not isinstance(data, Mapping):
        raise WireFormatError(
            f"RoutePlannerStatus: expected a JSON object, got {type(data).__name__}",
            model="RoutePlannerStatus",
        )
    name = data.get(_CLASS)
    if not isinstance(name, str):
        raise WireFormatError(
            f"RoutePlannerStatus.class: expected a string, got {name!r}",
            model="RoutePlannerStatus",
            key=_CLASS,
        )
    return _STATUS_TYPES.get(name, RoutePlannerStatus).from_wire(data)
