"""Which projects the caller of a tool may read or cancel: its project grant.

An OAuth access token may carry a list of project patterns (the claim `cjm_projects` by default);
a token without it, a static bearer token, stdio and the CLI may use every project. The grant of
the call under way is held in a context variable, as the SDK holds the access token: the MCP
server sets it around each tool call, and the service consults it after routing, before any
backend is asked anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class ProjectGrant:
    """Glob patterns over project references; `None` grants every project.

    A pattern without a colon matches the project on any backend; `NAME:PATTERN` matches it only
    on backend NAME. Patterns are matched against where the reference was routed, so spelling a
    reference with or without its `NAME:` prefix cannot widen a grant.
    """

    patterns: tuple[str, ...] | None = None

    def allows(self, backend: str, project: str) -> bool:
        if self.patterns is None:
            return True
        for pattern in self.patterns:
            name, separator, project_pattern = pattern.partition(":")
            if separator:
                if name == backend and fnmatchcase(project, project_pattern):
                    return True
            elif fnmatchcase(project, pattern):
                return True
        return False


EVERY_PROJECT = ProjectGrant()
_current: ContextVar[ProjectGrant] = ContextVar("project_grant", default=EVERY_PROJECT)


def current_grant() -> ProjectGrant:
    return _current.get()


@contextmanager
def granted(grant: ProjectGrant) -> Iterator[None]:
    """Run the enclosed tool call under `grant`."""
    token = _current.set(grant)
    try:
        yield
    finally:
        _current.reset(token)
