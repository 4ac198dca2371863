"""Which backend serves a project reference: the one place that decides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .backends import Backend
from .errors import ErrorCode, ToolError

BackendFactory = Callable[[], Backend]


@dataclass(frozen=True)
class Route:
    backend: Backend
    project: str


class Router:
    """Sends `NAME:REF` to backend NAME, and every other reference to the default backend.

    Backends are created on first use, so a server start imports none of them.
    """

    def __init__(self, factories: Mapping[str, BackendFactory], default: str | None) -> None:
        self._factories = dict(factories)
        self._default = default
        self._backends: dict[str, Backend] = {}

    @classmethod
    def local_only(cls, home: Path) -> Router:
        def make_local() -> Backend:
            from .backends.local import LocalBackend

            return LocalBackend(home)

        return cls({"local": make_local}, default="local")

    def route(self, project_reference: str) -> Route:
        name, separator, project = project_reference.partition(":")
        if separator:
            if name not in self._factories:
                raise self._unknown(f"There is no backend named {name!r}.")
            return Route(self._backend(name), project)
        if self._default is None:
            raise self._unknown(f"No backend serves project {project_reference!r}.")
        return Route(self._backend(self._default), project_reference)

    def _unknown(self, problem: str) -> ToolError:
        backends = ", ".join(sorted(self._factories)) or "none"
        return ToolError(
            ErrorCode.UNKNOWN_PROJECT,
            f"{problem} Name a configured backend as 'NAME:PROJECT' (configured backends: {backends}).",
        )

    def _backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = self._factories[name]()
        return self._backends[name]

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
