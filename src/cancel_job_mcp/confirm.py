"""A person confirms a cancel before it is made, asked through the MCP client (elicitation).

Two protocol eras, two ways to ask:
- 2025-11-25 (stdio, and HTTP with sessions): the server sends an `elicitation/create` request while the
  tool call waits, and goes on with the answer.
- 2026-07-28 (every transport; the only way on stateless HTTP and `--workers`): the tool call answers
  `input_required` with the question and a request state; the client asks the person and calls again
  with the answer and that state. The state is sealed by the SDK's `RequestStateBoundary` (AES-GCM under
  a key kept in the state directory, so every worker shares it; bound to the tool, its arguments, the
  caller's token name, and ten minutes), so a client can neither forge it nor move it to another call.
  Each state carries a nonce that the audit database lets through once: a replayed answer is refused.

A client that declares no elicitation support, or a 2025-11-25 connection with no way back to the client
(stateless HTTP), cannot ask: the configured fallback decides (deny, by default).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp import MCPError, types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import NoBackChannelError
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from .audit import AuditLog, Confirmation
from .caller import TOKEN_NAME_KEY
from .config import ConfirmPolicy
from .cursors import load_or_create_key
from .errors import ToolError, cannot_confirm, not_confirmed
from .record import JobRecord

if TYPE_CHECKING:
    from mcp.server.request_state import RequestStateBoundary

KEY_FILE = "request-state.key"
STATE_SECONDS = 600.0  # how long a person has to answer, in the 2026-07-28 era
AUDIENCE = "cancel-job-mcp"
QUESTION_KEY = "confirm"  # the input request's key, and the form's one field
MAX_LISTED = 20  # jobs shown one by one in a bulk question; the rest are counted
MAX_TARGET_CHARS = 160
FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        QUESTION_KEY: {
            "type": "boolean",
            "title": "Cancel?",
            "description": "Yes stops the jobs listed above; they cannot be resumed.",
            "default": False,
        }
    },
    "required": [QUESTION_KEY],
}
REFUSED_STATE = "Invalid or expired requestState"  # the SDK's own words for a state it refuses


class NeedsInput(Exception):
    """Raised by `Confirmer.ask` in the 2026-07-28 era: the tool call answers with this question."""

    def __init__(self, result: types.InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


@dataclass(frozen=True)
class Answer:
    """How a confirmation went, and what was confirmed (the `subject` minted with the question)."""

    confirmation: Confirmation
    subject: Any


def boundary(home: Path) -> RequestStateBoundary:
    """The SDK middleware sealing and checking request states, under this state directory's key
    (imported here: its cryptography costs a start that asks no one nothing)."""
    from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity

    security = RequestStateSecurity(
        keys=[load_or_create_key(home / KEY_FILE)],
        ttl=STATE_SECONDS,
        bind_principal=_principal,
        audience=AUDIENCE,
    )
    return RequestStateBoundary(security, default_audience=AUDIENCE)


def _principal(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """Whom a request state belongs to: the OAuth token's issuer, client and subject, or the static
    token's name, or None (stdio, or HTTP without tokens)."""
    from .access import request_token

    if ctx.request is None:
        return None
    if (token := request_token(ctx.request)) is not None:
        return json.dumps(
            ["oauth", token.claims.get("iss") if token.claims else None, token.client_id, token.subject]
        )
    name = ctx.request.scope.get(TOKEN_NAME_KEY)
    return f"token:{name}" if name is not None else None


class Confirmer:
    """Asks a person to confirm, as the `[confirm]` policy says, in the era of the call."""

    def __init__(self, policy: ConfirmPolicy, audit: AuditLog) -> None:
        self.policy = policy
        self.audit = audit

    def needed(self, project_reference: str) -> bool:
        return self.policy.applies_to(project_reference)

    async def answered(self, ctx: ServerRequestContext[Any]) -> Answer | None:
        """The answer this call carries to a question asked earlier (2026-07-28), or None."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS or ctx.params is None:
            return None
        state = ctx.params.get("requestState")  # plaintext: the boundary checked and unsealed it
        if state is None:
            return None
        minted = _minted(state)
        if minted is None or not await self.audit.claim(minted["nonce"], minted["expires"]):
            raise MCPError(code=types.INVALID_PARAMS, message=REFUSED_STATE)  # replayed
        responses = ctx.params.get("inputResponses")
        response = responses.get(QUESTION_KEY) if isinstance(responses, Mapping) else None
        return Answer(_confirmation(response), minted["subject"])

    async def ask(self, ctx: ServerRequestContext[Any], question: str, subject: Any) -> Answer:
        """Ask the person; `subject` (JSON) is what the answer will be about. In the 2026-07-28 era
        this raises `NeedsInput`: the answer comes with the next call (`answered`)."""
        if not _can_elicit(ctx):
            return Answer(self._fallback(), subject)
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            nonce = secrets.token_urlsafe(16)
            state = {"nonce": nonce, "expires": time.time() + STATE_SECONDS, "subject": subject}
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=question, requested_schema=FORM)
            )
            raise NeedsInput(
                types.InputRequiredResult(
                    input_requests={QUESTION_KEY: request}, request_state=json.dumps(state)
                )
            )
        if not ctx.session.can_send_request:
            return Answer(self._fallback(), subject)  # stateless HTTP: no way back to the client
        try:
            result = await ctx.session.elicit_form(question, FORM, related_request_id=ctx.request_id)
        except NoBackChannelError:
            return Answer(self._fallback(), subject)
        return Answer(_confirmation(result.model_dump(mode="json")), subject)

    def _fallback(self) -> Confirmation:
        return Confirmation.FALLBACK_ALLOW if self.policy.fallback == "allow" else Confirmation.FALLBACK_DENY


def _can_elicit(ctx: ServerRequestContext[Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities else None
    # An empty `elicitation` object means form mode (clients from before modes existed send it so).
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _minted(state: Any) -> dict[str, Any] | None:
    try:
        minted = json.loads(state)
    except (TypeError, ValueError):
        return None
    if not isinstance(minted, dict) or not {"nonce", "expires", "subject"} <= minted.keys():
        return None
    return minted


def _confirmation(response: Any) -> Confirmation:
    """A person's answer: yes only when they accepted the form with the box ticked."""
    if not isinstance(response, Mapping):
        return Confirmation.DISMISSED
    action = response.get("action")
    content = response.get("content")
    if action == "accept":
        yes = isinstance(content, Mapping) and content.get(QUESTION_KEY) is True
        return Confirmation.ACCEPTED if yes else Confirmation.DECLINED
    return Confirmation.DECLINED if action == "decline" else Confirmation.DISMISSED


def allowed(confirmation: Confirmation) -> bool:
    return confirmation in (Confirmation.ACCEPTED, Confirmation.FALLBACK_ALLOW, Confirmation.NOT_REQUIRED)


def declined(confirmation: Confirmation, what: str) -> ToolError:
    """The refusal of a cancel nobody confirmed; `what` names the jobs (e.g. "job 'x' in project 'p'")."""
    if confirmation == Confirmation.FALLBACK_DENY:
        return cannot_confirm(what)
    return not_confirmed(what, dismissed=confirmation == Confirmation.DISMISSED)


def job_question(record: JobRecord, project_reference: str) -> str:
    return f"Cancel this job in project {project_reference!r}?\n{_describe(record)}"


def jobs_question(records: Sequence[JobRecord], project_reference: str) -> str:
    lines = [_describe(record) for record in records[:MAX_LISTED]]
    if len(records) > MAX_LISTED:
        lines.append(f"... and {len(records) - MAX_LISTED} more.")
    return f"Cancel these {len(records)} jobs in project {project_reference!r}?\n" + "\n".join(lines)


def _describe(record: JobRecord) -> str:
    """One job as a person recognizes it: name, id, status, how long it has run, what it runs."""
    target = record["target"]
    if len(target) > MAX_TARGET_CHARS:
        target = target[: MAX_TARGET_CHARS - 3] + "..."
    running = _running_for(record)
    return f"- {record['name']} ({record['id']}): {record['status']}{running}; runs {target}"


def _running_for(record: JobRecord) -> str:
    started = record["started_at"]
    if started is None:
        return ""
    try:
        seconds = (datetime.now(UTC) - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return ""
    minutes, hours = int(seconds // 60) % 60, int(seconds // 3600)
    return f" for {hours} h {minutes} min" if hours else f" for {minutes} min {int(seconds) % 60} s"
