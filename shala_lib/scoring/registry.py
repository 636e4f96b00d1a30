"""A named registry (methods, metrics): entries in registration order, plugins loaded when read."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from shala_lib.scoring.plugins import load_plugins


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T, replace: bool = False) -> T:
        if entry.name in self._entries and not replace:
            raise ValueError(f"{self.kind} {entry.name!r} is already registered (pass replace=True to redefine it)")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def entries(self) -> tuple[T, ...]:
        """Every entry, in registration order, after importing the `SHALA_PLUGINS` modules."""
        load_plugins()
        return tuple(self._entries.values())

    def get(self, name: str) -> T:
        entries = {e.name: e for e in self.entries()}
        if name not in entries:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {sorted(entries)}")
        return entries[name]

    def find(self, name: str) -> T | None:
        return {e.name: e for e in self.entries()}.get(name)
