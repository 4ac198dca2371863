"""Which backend serves a project reference: the one place that decides.

`NAME:REF` sends REF to backend NAME; any other reference goes to the first backend, in file
order, one of whose `projects` patterns matches it. Backends are created on first use, so a
server start imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from .backends import registry
from .backends.base import Backend, BackendSettings
from .config import Config
from .errors import ToolError, cannot_start, unknown_project

BackendFactory = Callable[[BackendSettings], Backend]


@dataclass(frozen=True)
class Route:
    backend: Backend
    settings: BackendSettings
    project: str


class Router:
    def __init__(
        self, backends: Sequence[BackendSettings], factory: BackendFactory = registry.create
    ) -> None:
        self._settings = {settings.name: settings for settings in backends}
        self._factory = factory
        self._backends: dict[str, Backend] = {}

    @classmethod
    def from_config(cls, config: Config) -> Router:
        return cls(config.backends)

    def route(self, project_reference: str) -> Route:
        name, separator, project = project_reference.partition(":")
        if separator:
            if name not in self._settings:
                raise self._unknown(f"There is no backend named {name!r}.")
            return self._route(name, project)
        for settings in self._settings.values():
            if any(fnmatchcase(project_reference, pattern) for pattern in settings.projects):
                return self._route(settings.name, project_reference)
        raise self._unknown(f"No backend serves project {project_reference!r}.")

    def _route(self, name: str, project: str) -> Route:
        if name not in self._backends:
            try:
                self._backends[name] = self._factory(self._settings[name])
            except ValueError as error:  # a setting only the backend itself can check, e.g. $RAY_ADDRESS
                raise cannot_start(name, error) from None
        return Route(self._backends[name], self._settings[name], project)

    def _unknown(self, problem: str) -> ToolError:
        served = "; ".join(
            f"{settings.name} ({', '.join(settings.projects) or 'only as ' + settings.name + ':REF'})"
            for settings in self._settings.values()
        )
        return unknown_project(problem, served or "none")

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
