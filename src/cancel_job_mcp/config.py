"""Configuration: where state lives, which backends exist, and how they are reached.

The file is TOML: `--config PATH`, else `$CANCEL_JOB_MCP_CONFIG`, else `$CANCEL_JOB_MCP_HOME/config.toml`
when it exists. Each backend is a table `[backends.NAME]`; secrets never go in the file, only the
name of the environment variable that holds them (`token_env`). With no file, every provider whose
standard environment variable is set can be used as `KIND:REF`, and `local` serves the rest.
Everything is checked at start (each table by the model of its kind, in `config_models`), so a bad
file fails before the first tool call, with every problem in it named at once.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .backends import registry
from .backends.base import BackendSettings
from .defaults import DEFAULT_OAUTH_LEEWAY, DEFAULT_PROJECTS_CLAIM

APP_NAME = "cancel-job-mcp"
HOME_ENV = "CANCEL_JOB_MCP_HOME"
CONFIG_ENV = "CANCEL_JOB_MCP_CONFIG"
HTTP_TOKENS_ENV = "CANCEL_JOB_MCP_HTTP_TOKENS"
# The credentials this server introspects opaque OAuth tokens with: from the environment, never the file.
OAUTH_CLIENT_ID_ENV = "CANCEL_JOB_MCP_OAUTH_CLIENT_ID"
OAUTH_CLIENT_SECRET_ENV = "CANCEL_JOB_MCP_OAUTH_CLIENT_SECRET"
LOCAL = "local"  # the kind, and the name of the backend that serves every project no other one does
CATCH_ALL = ("*",)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigError(Exception):
    """A configuration problem, worded to name the file, the table and the fix."""


@dataclass(frozen=True)
class OAuthSettings:
    """`--oauth-issuer`/`--oauth-resource` or the file's `[http.oauth]`: HTTP as an OAuth resource server.

    `issuer` is the authorization server's issuer identifier; `resource` this server's MCP endpoint URL,
    the audience its tokens must name. `introspection_endpoint`, when set, is where opaque (non-JWT)
    tokens are checked, with the client id and secret of the environment variables above.
    """

    issuer: str
    resource: str
    introspection_endpoint: str | None = None
    projects_claim: str = DEFAULT_PROJECTS_CLAIM
    leeway: float = DEFAULT_OAUTH_LEEWAY

    def __post_init__(self) -> None:
        check_oauth_url("the OAuth issuer", self.issuer, authorization_server=True)
        check_oauth_url("the OAuth resource", self.resource, authorization_server=False)
        if self.introspection_endpoint is not None:
            endpoint = self.introspection_endpoint
            check_oauth_url("the introspection endpoint", endpoint, authorization_server=True)


_OAUTH_URL = re.compile(r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(:[0-9]{1,5})?(/[^\s?#]*)?")


def check_oauth_url(what: str, url: str, *, authorization_server: bool) -> None:
    """An http(s) URL with no query or fragment; an authorization server's must be https, or on loopback."""
    match = _OAUTH_URL.fullmatch(url)
    if match is None:
        raise ValueError(f"{what} must be an https:// URL with no query or fragment (got {url[:200]!r})")
    host = match[2].strip("[]").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if authorization_server and match[1] != "https" and not loopback:
        raise ValueError(f"{what} must use https:// (plain http:// only on loopback); got {url[:200]!r}")


@dataclass(frozen=True)
class ConfirmPolicy:
    """The `[confirm]` table: whether a person confirms each cancel ("never" or "ask"), for which
    project references (glob patterns), and what happens when the client cannot ask ("deny" or "allow")."""

    cancel: str = "never"
    projects: tuple[str, ...] = ("*",)
    fallback: str = "deny"

    def applies_to(self, project_reference: str) -> bool:
        """A `NAME:` prefix does not escape a pattern: the reference matches as given or without it."""
        if self.cancel != "ask":
            return False
        bare = project_reference.partition(":")[2] or project_reference
        return any(
            fnmatchcase(ref, pattern) for pattern in self.projects for ref in (project_reference, bare)
        )


@dataclass(frozen=True)
class Config:
    backends: tuple[BackendSettings, ...]
    source: Path | None = None
    read_only: bool = False
    oauth: OAuthSettings | None = None
    confirm: ConfirmPolicy = ConfirmPolicy()


def user_data_dir() -> Path:
    """The platform's per-user data directory for this application."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / APP_NAME
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP_NAME


def data_home() -> Path:
    """`$CANCEL_JOB_MCP_HOME`, else the user data directory."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else user_data_dir()


def config_path(explicit: Path | None, home: Path) -> Path | None:
    if explicit is not None:
        return explicit
    if configured := os.environ.get(CONFIG_ENV):
        return Path(configured).expanduser()
    default = home / "config.toml"
    return default if default.is_file() else None


def load_config(explicit: Path | None, home: Path, environ: Mapping[str, str] = os.environ) -> Config:
    path = config_path(explicit, home)
    if path is None:
        return env_only_config(home, environ)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file ({error.strerror}).") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); TOML files are UTF-8: save it in that encoding."
        ) from None
    return parse_config(text, path, home, environ)


def env_only_config(home: Path, environ: Mapping[str, str]) -> Config:
    """`KIND:REF` for every provider whose standard environment variable is set; `local` for the rest."""
    backends = [
        # An optional token (Temporal's API key) is read from its standard variable only when set.
        BackendSettings(name=kind, kind=kind, token_env=entry.token_env if entry.token_required else None)
        for kind, entry in registry.ENTRIES.items()
        if any(environ.get(variable) for variable in (entry.token_env, entry.address_env) if variable)
    ]
    return Config(backends=(*backends, _implicit_local(home)))


def _implicit_local(home: Path) -> BackendSettings:
    return BackendSettings(name=LOCAL, kind=LOCAL, projects=CATCH_ALL, options={"home": str(home)})


def parse_config(text: str, source: Path, home: Path, environ: Mapping[str, str] = os.environ) -> Config:
    """The configuration in `text`; every problem in it is reported at once, one line each."""
    import tomllib  # only when there is a file

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error}).") from None
    except RecursionError:
        raise ConfigError(
            f"{source}: its arrays or tables nest too deeply to read; a configuration needs a few levels."
        ) from None
    problems = [f"{source}: {problem}" for problem in _top_level_problems(document)]
    confirm, confirm_problems = _confirm(document.get("confirm", {}))
    problems += [f"{source}: [confirm]: {problem}" for problem in confirm_problems]
    tables = document.get("backends", {})
    backends: list[BackendSettings] = []
    if isinstance(tables, dict):
        for name, table in tables.items():
            where = f"{source}: [backends.{name}]"
            settings, table_problems = _backend(name, table, home, environ)
            problems += [f"{where}: {problem}" for problem in table_problems]
            if settings is not None:
                backends.append(settings)
    oauth, oauth_problems = _oauth(document.get("http"))
    problems += [f"{source}: {problem}" for problem in oauth_problems]
    if problems:
        raise ConfigError("\n".join(problems))
    if LOCAL not in tables:
        backends.append(_implicit_local(home))
    # The catch-all is tried last, wherever its table is in the file.
    backends.sort(key=lambda settings: settings.name == LOCAL and settings.projects == CATCH_ALL)
    return Config(
        backends=tuple(backends),
        source=source,
        read_only=document.get("read_only", False),
        oauth=oauth,
        confirm=confirm,
    )


def _top_level_problems(document: dict[str, Any]) -> Iterator[str]:
    for key in sorted(set(document) - {"backends", "read_only", "http", "confirm"}):
        yield f"unknown top-level key {key!r}; use 'backends', 'read_only', 'http' and 'confirm'."
    if not isinstance(document.get("read_only", False), bool):
        yield "read_only must be true or false."
    if not isinstance(document.get("backends", {}), dict):
        yield "backends must be tables, as in [backends.NAME]."


def _oauth(http: Any) -> tuple[OAuthSettings | None, list[str]]:
    """The `[http.oauth]` table (the only table `[http]` takes), and its problems."""
    from pydantic import ValidationError

    from .config_models import OAuthTable, oauth_problem_text

    if http is None:
        return None, []
    if not isinstance(http, dict) or set(http) - {"oauth"}:
        return None, ["[http] takes only the table [http.oauth]."]
    if "oauth" not in http:
        return None, []
    try:
        table = OAuthTable.model_validate(http["oauth"])
        return OAuthSettings(**table.model_dump(exclude_none=True)), []
    except ValidationError as error:
        return None, [f"[http.oauth]: {oauth_problem_text(problem)}." for problem in error.errors()]
    except ValueError as error:
        return None, [f"[http.oauth]: {error}."]


def _confirm(table: Any) -> tuple[ConfirmPolicy, list[str]]:
    from pydantic import ValidationError

    from .config_models import ConfirmTable, confirm_problem

    if not isinstance(table, dict):
        return ConfirmPolicy(), ["must be a table of settings, as in [confirm]."]
    try:
        model = ConfirmTable.model_validate(table)
    except ValidationError as error:
        return ConfirmPolicy(), [f"{confirm_problem(problem)}." for problem in error.errors()]
    projects = tuple(model.projects) if model.projects is not None else ConfirmPolicy.projects
    return ConfirmPolicy(model.cancel, projects, model.fallback), []


def _backend(
    name: str, table: Any, home: Path, environ: Mapping[str, str]
) -> tuple[BackendSettings | None, list[str]]:
    """The settings of one enabled table (None when disabled or wrong), and its problems."""
    from pydantic import ValidationError

    from .config_models import LocalTable, problem_text, table_model

    if not _NAME.fullmatch(name):
        return None, ["a backend name must be 1-64 letters, digits, '_' or '-'."]
    if not isinstance(table, dict):
        return None, ["must be a table of settings, as in [backends.NAME]."]
    kind = table.get("kind", name if name in registry.KINDS else None)
    if kind not in registry.KINDS:
        given = f"got {kind!r}" if "kind" in table else f"{name!r} is not a kind"
        return None, [f"set kind to one of {', '.join(registry.KINDS)} ({given})."]
    try:
        model = table_model(kind).model_validate({**table, "kind": kind})
    except ValidationError as error:
        return None, [f"{problem_text(kind, problem, registry.KINDS)}." for problem in error.errors()]
    if not model.enabled:
        return None, []
    settings = model.settings(name, home)
    if not isinstance(model, LocalTable):
        return settings, _missing_token(kind, settings.token_env, environ)
    if name == LOCAL and model.projects is None:  # local keeps its catch-all unless it says otherwise
        return replace(settings, projects=CATCH_ALL), []
    return settings, []


def _missing_token(kind: str, token_env: str | None, environ: Mapping[str, str]) -> list[str]:
    """A token the backend needs whose environment variable is unset or empty."""
    entry = registry.ENTRIES[kind]
    variable = token_env or entry.token_env
    needed = token_env is not None or entry.token_required
    if variable is None or not needed or environ.get(variable, "").strip():
        return []
    return [f"the environment variable {variable} is not set; export it with the token."]
