"""Configuration: where state lives, which backends exist, and how they are reached.

The file is TOML: `--config PATH`, else `$CANCEL_JOB_MCP_CONFIG`, else `$CANCEL_JOB_MCP_HOME/config.toml`
when it exists. Each backend is a table `[backends.NAME]`; secrets never go in the file, only the
name of the environment variable that holds them (`token_env`). With no file, every provider whose
standard environment variable is set can be used as `KIND:REF`, and `local` serves the rest.
Everything is checked here, at start, so a bad file fails before the first tool call.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import registry
from .backends.base import BackendSettings

APP_NAME = "cancel-job-mcp"
HOME_ENV = "CANCEL_JOB_MCP_HOME"
CONFIG_ENV = "CANCEL_JOB_MCP_CONFIG"
HTTP_TOKENS_ENV = "CANCEL_JOB_MCP_HTTP_TOKENS"


# Keys of a backend table beyond the common ones, passed to the backend as `options`.
OPTION_KEYS = frozenset(
    {"home", "max_retries", "max_retry_wait", "retry_backoff", "auth_header", "auth_scheme"}
    | {"api_version", "scope", "user_name"}  # slurm
)
_COMMON_KEYS = frozenset(
    {
        "kind",
        "base_url",
        "token_env",
        "connect_timeout",
        "read_timeout",
        "settle_timeout",
        "projects",
        "enabled",
    }
)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATTERN = re.compile(r"[A-Za-z0-9._*?\[\]!-]{1,128}")


class ConfigError(Exception):
    """A configuration problem, worded to name the file, the table and the fix."""


@dataclass(frozen=True)
class Config:
    backends: tuple[BackendSettings, ...]
    source: Path | None = None
    read_only: bool = False


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
    return parse_config(text, path, home, environ)


def env_only_config(home: Path, environ: Mapping[str, str]) -> Config:
    """`KIND:REF` for every provider whose standard environment variable is set; `local` for the rest."""
    specs = [registry.spec(kind) for kind in registry.KINDS if kind != "local"]
    backends = [
        BackendSettings(name=spec.kind, kind=spec.kind, token_env=spec.token_env)
        for spec in specs
        if any(environ.get(variable) for variable in (spec.token_env, spec.address_env) if variable)
    ]
    return Config(backends=(*backends, _implicit_local(home)))


def _implicit_local(home: Path) -> BackendSettings:
    return BackendSettings(name="local", kind="local", projects=("*",), options={"home": str(home)})


def parse_config(text: str, source: Path, home: Path, environ: Mapping[str, str] = os.environ) -> Config:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error}).") from None
    unknown = set(document) - {"backends", "read_only"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key {sorted(unknown)[0]!r}; use 'backends' and 'read_only'."
        )
    read_only = document.get("read_only", False)
    if not isinstance(read_only, bool):
        raise ConfigError(f"{source}: 'read_only' must be true or false.")
    tables = document.get("backends", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: 'backends' must be tables, as in [backends.NAME].")
    backends = [_backend(source, name, table, home, environ) for name, table in tables.items()]
    if "local" not in tables:
        backends.append(_implicit_local(home))
    enabled = tuple(settings for settings in backends if settings is not None)
    return Config(backends=enabled, source=source, read_only=read_only)


def _backend(
    source: Path, name: str, table: Any, home: Path, environ: Mapping[str, str]
) -> BackendSettings | None:
    where = f"{source}: [backends.{name}]"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: a backend name must be 1-64 letters, digits, '_' or '-'.")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of settings.")
    unknown = set(table) - _COMMON_KEYS - OPTION_KEYS
    if unknown:
        known = ", ".join(sorted(_COMMON_KEYS | OPTION_KEYS))
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; the keys are: {known}.")
    if table.get("enabled", True) is False:
        return None
    kind_name = table.get("kind", name if name in registry.KINDS else None)
    if kind_name not in registry.KINDS:
        raise ConfigError(f"{where}: set kind to one of {', '.join(registry.KINDS)} (got {kind_name!r}).")
    kind = registry.spec(kind_name)
    token_env = _optional(where, table, "token_env", str) or kind.token_env
    if token_env is not None and not _ENV_NAME.fullmatch(token_env):
        raise ConfigError(f"{where}: token_env must name an environment variable, not hold the secret.")
    if kind.token_required and token_env and not environ.get(token_env):
        raise ConfigError(
            f"{where}: the environment variable {token_env} is not set; export it with the token."
        )
    options = {key: table[key] for key in OPTION_KEYS & set(table)}
    if kind_name == "local":
        options.setdefault("home", str(home))
    return BackendSettings(
        name=name,
        kind=kind_name,
        base_url=_base_url(where, table, unix_socket=kind_name == "slurm"),
        token_env=token_env,
        connect_timeout=_seconds(where, table, "connect_timeout", 5.0),
        read_timeout=_seconds(where, table, "read_timeout", 30.0),
        settle_timeout=_seconds(where, table, "settle_timeout", 10.0),
        projects=_patterns(where, table),
        options=options,
    )


def _optional(where: str, table: dict[str, Any], key: str, expected: type) -> Any:
    value = table.get(key)
    if value is not None and not isinstance(value, expected):
        raise ConfigError(f"{where}: {key} must be a {expected.__name__}.")
    return value


def _base_url(where: str, table: dict[str, Any], *, unix_socket: bool = False) -> str | None:
    url: str | None = _optional(where, table, "base_url", str)
    if unix_socket and url is not None and re.fullmatch(r"unix:/\S+", url):
        return url  # slurmrestd on a unix socket
    if url is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ConfigError(
            f"{where}: base_url must be an http:// or https:// URL with no query (got {url!r})."
        )
    return url.rstrip("/") if url else None


def _seconds(where: str, table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number of seconds, 0 or more.")
    return float(value)


def _patterns(where: str, table: dict[str, Any]) -> tuple[str, ...]:
    patterns = table.get("projects", [])
    if not isinstance(patterns, list) or not all(isinstance(pattern, str) for pattern in patterns):
        raise ConfigError(f"{where}: projects must be a list of project references or glob patterns.")
    for pattern in patterns:
        if not _PATTERN.fullmatch(pattern):
            raise ConfigError(
                f"{where}: bad project pattern {pattern!r}; use letters, digits, '.', '_', '-' and the"
                " glob characters * ? [ ] !, as in 'ingest-*'."
            )
    return tuple(patterns)
