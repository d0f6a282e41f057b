"""The channels this deployment serves, as the enabled plugins (and core) declared them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .hookspecs import ChannelSpec, LiveChannelSpec


def reachable_now(spec: ChannelSpec, recipient: str) -> bool:
    """Whether a message on this channel reaches its customer now: always, unless the
    channel is live and says the customer is away."""
    return not isinstance(spec, LiveChannelSpec) or bool(spec.reachable(recipient))


@dataclass(frozen=True)
class DeclaredChannel:
    spec: ChannelSpec
    owner: str  # the plugin that declared it ("core" for web, api, staff)

    @property
    def name(self) -> str:
        return self.spec.name


class Channels:
    """Every declared channel, one owner each; nothing else lists channels by hand."""

    def __init__(self, declared: list[DeclaredChannel]):
        self._by_name = {d.name: d for d in sorted(declared, key=lambda d: (d.spec.order,
                                                                            d.name))}

    def __iter__(self) -> Iterator[DeclaredChannel]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> ChannelSpec | None:
        declared = self._by_name.get(name)
        return declared.spec if declared else None

    def owner(self, name: str) -> str | None:
        declared = self._by_name.get(name)
        return declared.owner if declared else None

    def label(self, name: str) -> str:
        """The channel's label; a channel no enabled plugin declares any more keeps its name."""
        spec = self.get(name)
        return str(spec.label) if spec else name

    def choices(self) -> list[tuple[str, str]]:
        return [(d.name, str(d.spec.label)) for d in self]

    def owned_by(self, plugin: str) -> list[str]:
        return [d.name for d in self if d.owner == plugin]

    def pushing_to(self, identity_kind: str) -> list[ChannelSpec]:
        """Channels that can write unprompted to an identity of this kind (email, say)."""
        return [d.spec for d in self if d.spec.can_push and d.spec.identity_kind == identity_kind]
