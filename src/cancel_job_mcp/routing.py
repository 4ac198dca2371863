"""Which backend serves a project reference: the one place that decides.

`NAME:REF` sends REF to backend NAME; any other reference goes to the first backend, in file
order, one of whose `projects` patterns matches it. Backends are created on first use, so a
server start imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .backends import registry
from .backends.base import Backend, BackendConfigError, BackendSettings
from .config import LOCAL, Config
from .errors import ToolError, backend_off, cannot_start, not_local, unknown_project

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
        name = settings.name
        if name not in self._backends:
            try:
                self._backends[name] = self._factory(settings)
            except BackendConfigError as error:  # a setting only the backend can check, e.g. $RAY_ADDRESS
                raise cannot_start(name, error) from None
        return Route(self._backends[name], settings, project)

    def settings_for(self, project_reference: str) -> tuple[BackendSettings, str]:
        """The settings of the backend that serves the reference, and the project id it knows."""
        name, separator, project = project_reference.partition(":")
        if separator:
            if name not in self._settings:
                raise self._unknown(f"There is no backend named {name!r}.{_how_to_enable(name)}")
            return self._settings[name], project
        for settings in self._settings.values():
            if any(fnmatchcase(project_reference, pattern) for pattern in settings.projects):
                return settings, project_reference
        raise self._unknown(f"No backend serves project {project_reference!r}.")

    def local_homes(self) -> list[Path]:
        """The state directory of every local backend, each once, in file order."""
        homes = (Path(s.options["home"]) for s in self._settings.values() if s.kind == LOCAL)
        return list(dict.fromkeys(homes))

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


def local_route(config: Config, project_reference: str) -> tuple[Path, str]:
    """Where a job submitted for `project_reference` is stored: the state directory of the local
    backend the reference routes to (as the tools will route it), and the project id."""
    settings, project = Router.from_config(config).settings_for(project_reference)
    if settings.kind != LOCAL:
        raise not_local(project_reference, settings.name, settings.kind)
    return Path(settings.options["home"]), project


def local_homes(config: Config) -> list[Path]:
    return Router.from_config(config).local_homes()


def _how_to_enable(name: str) -> str:
    """For a kind's own name: what turns its backend on."""
    entry = registry.ENTRIES.get(name)
    if entry is None or name == "local":
        return ""
    return " " + backend_off(name, entry.token_env or entry.address_env)
