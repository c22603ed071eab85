"""What brandmon writes for people to read never shows a secret, and producer text never forges
its structure.

- `Redactor` masks every 8-character piece of a secret (so neither the whole value nor most of
  it can leak through a truncated or re-encoded copy). For a URL the secret part is what comes
  after the host (path, query, fragment) and a password in it: the scheme and host of a Slack
  or PagerDuty URL are public, the path is the credential.
- `install_log_redaction()` applies a Redactor to every log record of the process, whatever
  the logger (httpx logs full request URLs; exception texts may quote them too), before any
  handler formats it. `brandmon.settings.load_settings()` installs it for the loaded settings.
- `log_safe()` escapes control characters in a producer-controlled string (a brand, a text),
  so a newline in a brand cannot start a forged log line.
"""

from __future__ import annotations

import logging
import traceback
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

#: A piece of a secret this long or longer is never shown (and secrets shorter than this
#: are masked whole).
WINDOW = 8
MASK = "***"
#: Unicode categories escaped by log_safe: controls (newline, ESC, NEL), format characters
#: (bidi overrides that reorder a line, zero-width characters) and line/paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def secret_material(value: str) -> str:
    """The part of `value` that is secret: for a URL with a host, all after the host (and a
    password in it); anything else whole."""
    try:
        parts = urlsplit(value)
        has_host = bool(parts.scheme and parts.netloc)
    except ValueError:
        has_host = False
    if not has_host:
        return value
    rest = value.split(parts.netloc, 1)[1]
    if len(rest) < WINDOW:  # nothing after the host to speak of: the host is the secret
        return value
    return f"{parts.password or ''} {rest}".strip()


class Redactor:
    """Masks, in any text, every piece of WINDOW characters of the given secrets."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._windows: set[str] = set()
        self._short: list[str] = []
        for secret in secrets:
            for part in secret_material(secret).split():
                if len(part) < WINDOW:
                    self._short.append(part)
                else:
                    self._windows.update(part[i : i + WINDOW] for i in range(len(part) - 7))
        self._short.sort(key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._windows or self._short)

    def __call__(self, text: str) -> str:
        if not self:
            return text
        masked = [False] * len(text)
        if self._windows:
            for i in range(len(text) - WINDOW + 1):
                if text[i : i + WINDOW] in self._windows:
                    masked[i : i + WINDOW] = [True] * WINDOW
        for short in self._short:
            start = text.find(short)
            while start != -1:
                masked[start : start + len(short)] = [True] * len(short)
                start = text.find(short, start + 1)
        if not any(masked):
            return text
        out: list[str] = []
        for i, char in enumerate(text):
            if not masked[i]:
                out.append(char)
            elif i == 0 or not masked[i - 1]:
                out.append(MASK)
        return "".join(out)


def log_safe(text: str) -> str:
    """`text` with backslashes and control/format/separator characters escaped (\\n, \\x1b,
    \\u2028), so it stays on one log line and reads the same in any terminal."""
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif unicodedata.category(char) in UNSAFE_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


# --- every log record of the process ---------------------------------------------------------

_active: list[Redactor] = []
_previous_factory: Any = None


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    if _active:
        _redact_record(record)
    return record


def _redact(text: str) -> str:
    for redactor in _active:
        text = redactor(text)
    return text


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # bad %-args: logging reports it later, quoting msg and args; pre-empt it
        message = f"{record.msg} (log arguments did not match the format)"
    clean = _redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text when it is set; the traceback text may quote a URL.
        record.exc_text = _redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.stack_info:
        record.stack_info = _redact(record.stack_info)


def install_log_redaction(redactor: Redactor) -> Redactor:
    """Mask `redactor`'s secrets in every log record created from now on, until removed
    (a redactor without secrets changes nothing and is not installed)."""
    global _previous_factory
    if not redactor:
        return redactor
    if _previous_factory is None:
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_redacting_factory)
    _active.append(redactor)
    return redactor


def remove_log_redaction(redactor: Redactor) -> None:
    """Stop masking `redactor`'s secrets; restore the record factory when none is left."""
    global _previous_factory
    if redactor in _active:
        _active.remove(redactor)
    ours = logging.getLogRecordFactory() is _redacting_factory
    if not _active and _previous_factory is not None and ours:
        logging.setLogRecordFactory(_previous_factory)
        _previous_factory = None
