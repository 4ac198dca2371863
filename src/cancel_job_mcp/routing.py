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
from .config import LOCAL, Config
from .errors import BackendConfigError, Served, ToolError, cannot_start, no_backend_named, no_backend_serves

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

    @property
    def backends(self) -> tuple[BackendSettings, ...]:
        return tuple(self._settings.values())

    def route(self, project_reference: str) -> Route:
        settings, project = self.settings_for(project_reference)
        return Route(self._backend(settings), settings, project)

    def local_backends(self) -> list[Backend]:
        """Each local backend with a state directory of its own, in file order: what spans every
        project (the command line's `jobs` without --project, and `prune`) goes to these."""
        by_home: dict[str, BackendSettings] = {}
        for settings in self._settings.values():
            if settings.kind == LOCAL:
                by_home.setdefault(str(settings.options["home"]), settings)
        return [self._backend(settings) for settings in by_home.values()]

    def _backend(self, settings: BackendSettings) -> Backend:
        name = settings.name
        if name not in self._backends:
            try:
                self._backends[name] = self._factory(settings)
            except BackendConfigError as error:  # a setting only the backend can check, e.g. $RAY_ADDRESS
                raise cannot_start(name, error) from None
        return self._backends[name]

    def settings_for(self, project_reference: str) -> tuple[BackendSettings, str]:
        """The settings of the backend that serves the reference, and the project id it knows."""
        name, separator, project = project_reference.partition(":")
        if separator:
            if name not in self._settings:
                raise self._no_backend_named(name)
            return self._settings[name], project
        for settings in self._settings.values():
            if any(fnmatchcase(project_reference, pattern) for pattern in settings.projects):
                return settings, project_reference
        raise no_backend_serves(project_reference, self._served())

    def _no_backend_named(self, name: str) -> ToolError:
        entry = registry.ENTRIES.get(name)
        if entry is None or name == "local":
            return no_backend_named(name, self._served())
        return no_backend_named(
            name, self._served(), is_kind=True, variable=entry.token_env or entry.address_env
        )

    def _served(self) -> list[Served]:
        return [(settings.name, settings.projects) for settings in self._settings.values()]

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
