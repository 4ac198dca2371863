"""What an OAuth caller may do, as the MCP server sees it in a tool call: the scope each tool needs,
the project grant its access token carries, and the name it is logged under (never the token).

Kept apart from `oauth` (which verifies tokens, with PyJWT and httpx) so that the MCP server, stdio
included, imports only what the SDK has already loaded.
"""

from __future__ import annotations

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.requests import Request

from .grants import EVERY_PROJECT, ProjectGrant

JOBS_READ = "jobs:read"
JOBS_CANCEL = "jobs:cancel"
SCOPES = (JOBS_READ, JOBS_CANCEL)
GRANT = "cjm_project_grant"  # where an AccessToken's claims hold its grant's patterns (None: every project)


def request_token(request: Request | None) -> AccessToken | None:
    """The access token a tool call came with over HTTP (None: stdio, a static token, no OAuth).

    Read from this request's own scope, not the SDK's context variable: a session's handlers run in
    the task of the request that opened it, and a client that stepped up sends a new token later."""
    user = request.scope.get("user") if request is not None else None
    return user.access_token if isinstance(user, AuthenticatedUser) else None


def token_grant(token: AccessToken) -> ProjectGrant:
    patterns = (token.claims or {}).get(GRANT)
    return ProjectGrant(tuple(patterns)) if patterns is not None else EVERY_PROJECT


def caller_name(token: AccessToken) -> str:
    """Who called, for the log line of each call and the audit trail's principal: the token's subject
    and client id, as the issuer wrote them (cut short, control characters replaced)."""
    return f"oauth sub={_shown(token.subject)} client={_shown(token.client_id)}"


def _shown(value: str | None) -> str:
    return (
        "".join(char if char.isprintable() and char != " " else "?" for char in value[:64]) if value else "-"
    )


def insufficient_scope_message(scope: str) -> str:
    return f"insufficient_scope: this call needs the scope {scope!r}, which the access token lacks."
