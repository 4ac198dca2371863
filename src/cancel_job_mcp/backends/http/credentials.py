"""A backend's secret: read once from the environment, sent only in its auth header, never shown.

"Never shown" is enforced by form, not by exact match: a `Redactor` finds the token, any piece of
8 or more of its characters, its base64 and base64url encodings (alone, after `Bearer `, or at any
byte offset inside a longer encoded text), its percent-encoding, and all of these in any case. It is
applied to provider answers (every string and key), to the provider messages we quote, and, once a
backend holds a secret, to every log record of the process (`protected`), debug level included.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from ...errors.providers import setting_missing, token_unsendable, token_unset
from ..base import BackendSettings

# What an HTTP header value can carry as a credential: visible ASCII, no spaces or control characters.
HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")
REDACTED = "[redacted]"
PIECE = 8  # the shortest piece of a secret that is hidden wherever it appears


def read_token(settings: BackendSettings, default_env: str | None, *, required: bool) -> str | None:
    """The secret from `settings.token_env` (or `default_env`); a missing required one is a config error."""
    env = settings.token_env or default_env
    if env is None:
        if required:
            raise setting_missing(settings.name, settings.kind, "token_env")
        return None
    token = os.environ.get(env, "").strip()
    if token and not HEADER_SAFE_TOKEN.fullmatch(token):
        raise token_unsendable(settings.name, settings.kind, env)
    if not token:
        if required or settings.token_env:
            raise token_unset(settings.name, settings.kind, env)
        return None
    return token


class Redactor:
    """Replaces every form of one secret (see the module docstring) in text with `[redacted]`."""

    def __init__(self, secret: str) -> None:
        pieces = {form[i : i + PIECE].lower() for form in secret_forms(secret) for i in range(len(form))}
        # A piece shorter than PIECE is only the tail of a form: keep whole short secrets only.
        self._words = {piece for piece in pieces if len(piece) == PIECE or len(piece) == len(secret)}
        self._shortest = min(len(word) for word in self._words)
        # The forms use few characters: a piece can only lie in a run of them at least that long.
        alphabet = "".join(re.escape(char) for char in sorted(set("".join(self._words))))
        self._runs = re.compile(f"[{alphabet}]{{{self._shortest},}}")
        trie = _trie(self._words)
        # Matched against lowered text: several times faster than IGNORECASE on long texts.
        self._lowered = re.compile(trie)
        # Every start of a piece, found in one pass; overlapping finds are merged into one span.
        self._starts = re.compile(f"(?=({trie}))", re.IGNORECASE)

    def found_in(self, text: str) -> bool:
        """Whether any form of the secret is in `text`: the runs of the forms' characters long enough
        to hold a piece are found in one pass, and only the distinct ones are searched for pieces."""
        runs = set(self._runs.findall(text.lower()))
        return self._lowered.search("\n".join(runs)) is not None

    def text(self, text: str) -> str:
        if len(text) < self._shortest or not self.found_in(text):
            return text
        spans: list[list[int]] = []
        for match in self._starts.finditer(text):
            start, end = match.start(), match.start() + len(match.group(1))
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], REDACTED]
            last = end
        return "".join([*parts, text[last:]])

    def value(self, value: Any) -> Any:
        """`value` (decoded JSON) with every string and key redacted: a walk of all of it, so a caller
        holding the JSON text first asks `found_in` of `answer.json_strings(body)`, one pass."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self.value(item) for key, item in value.items()}
        return value


def secret_forms(secret: str) -> list[str]:
    """The secret as it may be written back to us: plain, percent-encoded, and base64-encoded."""
    raw = secret.encode()
    forms = [secret, quote(secret, safe=""), quote_plus(secret), quote(f"Bearer {secret}", safe="")]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms += [encode(raw).decode(), encode(b"Bearer " + raw).decode()]
        # Inside a longer encoded text the secret starts at any byte offset; keep the characters
        # that encode its bytes only.
        for offset in (1, 2):
            encoded = encode(b"\0" * offset + raw).decode()
            forms.append(encoded[-(-offset * 8 // 6) : (offset + len(raw)) * 8 // 6])
    return [form for form in forms if form]


def _trie(words: Iterable[str]) -> str:
    """One regular expression matching any of `words`, as a trie (fast on long texts)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return pattern(root)


_PROTECTED: dict[str, Redactor] = {}


def protected(secret: str) -> Redactor:
    """The secret's redactor; from the first call on, every log record of the process is redacted of it."""
    if secret not in _PROTECTED:
        if not _PROTECTED:
            logging.setLogRecordFactory(_redacting(logging.getLogRecordFactory()))
        _PROTECTED[secret] = Redactor(secret)
    return _PROTECTED[secret]


def without_protected(text: str) -> str:
    """`text` without any secret protected so far, in any form."""
    for redactor in _PROTECTED.values():
        text = redactor.text(text)
    return text


def _redacting(make: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: logging reports it, without our help
            return record
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        for redactor in _PROTECTED.values():
            message = redactor.text(message)
            if record.exc_text:
                record.exc_text = redactor.text(record.exc_text)
        record.msg, record.args = message, None
        return record

    return factory
