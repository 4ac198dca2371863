"""The configuration file's `[backends.NAME]` tables as pydantic models: one model per kind, its own keys.

A table is validated by the model of its `kind` (a tagged union, dispatched on `kind` by `table_model`).
Validation is strict, as TOML is typed: `enabled = "no"` is not a boolean and `read_timeout = "30"` is
not a number. A key no model of the kind declares is refused, naming the kinds that do take it.
`config` imports this module only when there is a file to read, so commands that need no file never
import pydantic.

To give a kind keys of its own, subclass `HostedTable` (or `Table`) with them and list the model in
`KIND_TABLES`; the keys `BackendSettings` has not reach the backend as `BackendSettings.options`.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from .backends.base import BackendSettings

_SETTINGS_FIELDS = frozenset(field.name for field in fields(BackendSettings))
_TOML_TYPES: dict[type, str] = {str: "a string", list: "a list", dict: "a table"}
_SHOWN_TEXT = frozenset({"projects", "enabled"})  # keys whose text cannot be a misplaced secret
SECONDS = "must be a number of seconds, 0 or more"
NO_DEADLINE = "no_deadline"
_Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=0)]
_Pattern = Annotated[str, Field(pattern=r"^[A-Za-z0-9._*?\[\]!-]{1,128}$")]
# Shapes of tokens that a variable-name pattern alone would let through (AWS access key ids; a long run
# of letters and digits with no '_', as a generated secret is).
_TOKEN_SHAPES = re.compile(r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{12,}|(?=[A-Z0-9]*[0-9])[A-Z0-9]{20,}")


def _not_a_token(name: str) -> str:
    if _TOKEN_SHAPES.fullmatch(name):
        raise ValueError("looks like a token")  # words never shown: problem_text uses the description
    return name


_VariableName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$"), AfterValidator(_not_a_token)]


class Table(BaseModel):
    """The keys every kind takes."""

    # defer_build: a model's validator is built when a table of its kind is first read, not before.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    kind: str
    enabled: bool = Field(True, description="must be true or false")
    projects: list[_Pattern] | None = Field(
        None,
        description="must be a list of project references or glob patterns of letters, digits, '.', '_',"
        " '-' and the glob characters * ? [ ] !, as in [\"ingest-*\"]",
    )

    def settings(self, name: str, home: Path) -> BackendSettings:
        """The keys `BackendSettings` has become its fields, the others `options`; unset keys keep
        the defaults of `BackendSettings` and of the backend."""
        options = self.model_dump(exclude_none=True, exclude={"kind", "enabled", "projects"})
        common = {key: options.pop(key) for key in _SETTINGS_FIELDS if key in options}
        return BackendSettings(
            name=name, kind=self.kind, projects=tuple(self.projects or ()), options=options, **common
        )


class LocalTable(Table):
    """The embedded runtime. With no `projects`, the table named `local` serves every other project."""

    home: str | None = Field(None, description="must be the path of the state directory")

    def settings(self, name: str, home: Path) -> BackendSettings:
        own_home = Path(self.home).expanduser() if self.home is not None else home
        return BackendSettings(
            name=name, kind=self.kind, projects=tuple(self.projects or ()), options={"home": str(own_home)}
        )


class HostedTable(Table):
    """A backend reached over HTTP: the hosted providers, Ray and Slurm."""

    base_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#@]+(/[^\s?#]*)?$",
        description="must be an http:// or https:// URL with no user:password@, query or fragment",
    )
    token_env: _VariableName | None = Field(
        None,
        description="must name the environment variable that holds the token (upper-case letters, digits"
        " and '_', at most 64, as in VERYFRONT_API_TOKEN), not hold the token itself",
    )
    connect_timeout: _Seconds | None = Field(None, description=SECONDS)
    read_timeout: _Seconds | None = Field(None, description=SECONDS)
    settle_timeout: _Seconds | None = Field(None, description=SECONDS)
    max_retries: _Count | None = Field(None, description="must be a whole number, 0 or more")
    max_retry_wait: _Seconds | None = Field(None, description=SECONDS)
    retry_backoff: _Seconds | None = Field(None, description=SECONDS)
    total_timeout: _Seconds | None = Field(
        None, gt=0, validate_default=True, description="must be a number of seconds, more than 0"
    )
    max_response_bytes: int | None = Field(None, ge=1, description="must be a number of bytes, 1 or more")

    @field_validator("total_timeout")
    @classmethod
    def _a_deadline_above_zero(cls, value: float | None, info: ValidationInfo) -> float | None:
        """Unset, the total deadline is connect_timeout + read_timeout (http/retry.Policy): not both 0."""
        if value is not None or not {"connect_timeout", "read_timeout"} <= info.data.keys():
            return value  # a timeout that failed its own rule is reported by itself
        connect, read = info.data["connect_timeout"], info.data["read_timeout"]
        connect = BackendSettings.connect_timeout if connect is None else connect
        read = BackendSettings.read_timeout if read is None else read
        if connect + read > 0:
            return value
        raise PydanticCustomError(NO_DEADLINE, "connect_timeout and read_timeout are both 0")

    def settings(self, name: str, home: Path) -> BackendSettings:
        settings = super().settings(name, home)
        return replace(settings, base_url=self.base_url.rstrip("/")) if self.base_url else settings


class RayTable(HostedTable):
    """A Ray cluster's dashboard, possibly behind a proxy that wants its own auth header."""

    auth_header: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{1,64}$", description="must be an HTTP header name, e.g. Authorization"
    )
    auth_scheme: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{0,32}$", description='must be a scheme word such as Bearer, or ""'
    )


class SlurmTable(HostedTable):
    """slurmrestd, over HTTP or on a unix socket."""

    base_url: str | None = Field(
        None,
        pattern=r"^(https?://[^\s/?#@]+(/[^\s?#]*)?|unix:/\S+)$",
        description="must be an http:// or https:// URL with no user:password@, query or fragment, or"
        " unix:/path/to/socket",
    )
    scope: Literal["account", "partition", "user"] | None = Field(
        None, description='must be "account", "partition" or "user"'
    )
    api_version: str | None = Field(
        None,
        pattern=r"^v0\.0\.(3[89]|[4-9][0-9])$",
        description="must be a slurmrestd API version from v0.0.38 on, such as v0.0.41",
    )
    user_name: str | None = Field(None, description="must be the Slurm user name sent with the token")
    read_output: bool | None = Field(None, description="must be true or false")


class TemporalTable(HostedTable):
    """Temporal's HTTP API; `projects` are namespaces."""

    grace_period: _Seconds | None = Field(
        None,
        le=3600,
        description="must be a number of seconds from 0 to 3600 (a cancel's wait before terminating)",
    )


# The kinds with keys of their own; every other kind takes HostedTable's.
KIND_TABLES: dict[str, type[Table]] = {
    "local": LocalTable,
    "ray": RayTable,
    "slurm": SlurmTable,
    "temporal": TemporalTable,
}


class OAuthTable(BaseModel):
    """`[http.oauth]`: this server as an OAuth 2.1 resource server. Unset keys keep the defaults of
    `config.OAuthSettings`, which also checks the URLs. The introspection client's id and secret come
    from the environment, never from here."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    issuer: str = Field(description="must be the authorization server's issuer URL, as a string")
    resource: str = Field(description="must be this server's MCP endpoint URL, as a string")
    introspection_endpoint: str | None = Field(
        None, description="must be the authorization server's introspection endpoint URL, as a string"
    )
    projects_claim: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.:/-]{1,128}$",
        description="must be the name of a token claim (letters, digits, '_', '.', ':', '/', '-')",
    )
    leeway: float | None = Field(None, ge=0, le=300, allow_inf_nan=False, description="must be 0-300 seconds")


def oauth_problem_text(error: ErrorDetails) -> str:
    key = str(error["loc"][0]) if error["loc"] else "oauth"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}; [http.oauth] takes: {', '.join(OAuthTable.model_fields)}"
    if error["type"] == "missing":
        return f"{key} is required"
    return f"{key} {OAuthTable.model_fields[key].description}"


class ConfirmTable(BaseModel):
    """The `[confirm]` table: when a person must confirm a cancel through the MCP client."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    cancel: Literal["never", "ask"] = Field("never", description='must be "never" or "ask"')
    projects: list[_Pattern] | None = Field(
        None,
        description='must be a list of project references or glob patterns, as in ["prod-*"]',
    )
    fallback: Literal["deny", "allow"] = Field("deny", description='must be "deny" or "allow"')


def confirm_problem(error: ErrorDetails) -> str:
    key = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}; [confirm] takes: {', '.join(ConfirmTable.model_fields)}"
    value = error["input"]
    got = f" (got {value!r})" if isinstance(value, str | bool | int | float) and key != "projects" else ""
    return f"{key} {ConfirmTable.model_fields[key].description}{got}"


def table_model(kind: str) -> type[Table]:
    return KIND_TABLES.get(kind, HostedTable)


def kinds_taking(key: str, kinds: tuple[str, ...]) -> list[str]:
    """The kinds whose tables take `key`."""
    return [kind for kind in kinds if key in table_model(kind).model_fields]


def problem_text(kind: str, error: ErrorDetails, kinds: tuple[str, ...]) -> str:
    """One pydantic error as `key rule (got value)`, or the kinds that take a misplaced key."""
    model = table_model(kind)
    key = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        takers = kinds_taking(key, kinds)
        if takers:
            return f"{key!r} is not a key of a {kind} table; only {_join(takers)} tables take it"
        keys = ", ".join(sorted(model.model_fields))
        return f"unknown key {key!r}; a {kind} table takes: {keys}"
    if error["type"] == NO_DEADLINE:
        return (
            "total_timeout must be set, more than 0, when connect_timeout and read_timeout are both 0 (the"
            " total deadline of a request is otherwise their sum)"
        )
    rule = model.model_fields[key].description
    return f"{key} {rule}{_got(key, error)}"


def _got(key: str, error: ErrorDetails) -> str:
    """What the file held; of text, only its type (it may be a secret put in the wrong key)."""
    value = error["input"]
    if isinstance(value, bool | int | float) or (isinstance(value, str) and key in _SHOWN_TEXT):
        return f" (got {value!r})"
    if error["type"].endswith("_type") or not isinstance(value, str):
        return f" (got {_TOML_TYPES.get(type(value), 'a date or time')})"
    return ""


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
