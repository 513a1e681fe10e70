"""``GET /v4/info`` (PROTOCOL.md §3.2).

Plain dataclasses; safe to share between threads as long as nobody mutates them.
"""

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._base import WireModel

__all__ = ["Git", "Info", "Plugin", "Version"]


@dataclass
class Version(WireModel):
    """The server version. Snapshot builds report 0.0.0 with ``pre_release`` None.

    ``pre_release`` is ``""`` for a plain release on real servers; ``build`` is documented but
    never sent by v4 servers.
    """

    _wire_essential: ClassVar[tuple[str, ...]] = ()

    semver: str
    major: int
    minor: int
    patch: int
    pre_release: Optional[str] = None
    build: Optional[str] = None

    @staticmethod
    def _wire_liberal(d: dict[str, Any]) -> dict[str, Any]:
        """Fill major/minor/patch from ``semver`` when they are missing (other servers)."""
        semver = d.get("semver")
        if isinstance(semver, str):
            parts = semver.split("-", 1)[0].split("+", 1)[0].split(".")
            for index, key in enumerate(("major", "minor", "patch")):
                if (
                    not isinstance(d.get(key), int)
                    and index < len(parts)
                    and parts[index].isdigit()
                ):
                    d[key] = int(parts[index])
        return d

    @property
    def is_snapshot(self) -> bool:
        """True for non-release builds (no parsable semver: major, minor and patch are 0)."""
        return (self.major, self.minor, self.patch) == (0, 0, 0)

    @property
    def as_tuple(self) -> tuple[int, int, int]:
        """``(major, minor, patch)`` for comparisons such as ``>= (4, 2, 0)``."""
        return (self.major, self.minor, self.patch)


@dataclass
class Git(WireModel):
    """Where the server was built from; ``commit_time`` is epoch ms."""

    branch: str
    commit: str
    commit_time: int


@dataclass
class Plugin(WireModel):
    """A loaded server plugin."""

    name: str
    version: str


@dataclass
class Info(WireModel):
    """Server information: versions, sources, enabled filters and plugins.

    ``build_time`` is epoch ms (-1 if unknown). Read liberally (``Info.from_server``): servers
    other than Lavalink may leave out ``jvm``/``lavaplayer`` (then ``""``) and add keys of their
    own (kept in ``wire_extras``, e.g. NodeLink's ``isNodelink`` and ``node``).
    """

    _wire_essential: ClassVar[tuple[str, ...]] = ("version",)

    version: Version
    build_time: int
    git: Git
    jvm: str
    lavaplayer: str
    source_managers: list[str]
    filters: list[str]
    plugins: list[Plugin]

    def has_plugin(self, name: str) -> bool:
        """True if a plugin of that name is loaded."""
        return any(plugin.name == name for plugin in self.plugins)

    def has_source(self, name: str) -> bool:
        """True if a source manager of that name (``youtube``, ``spotify``, ...) is registered."""
        return name in self.source_managers
