"""Keys never reach a log line: every secret the gateway decrypts is redacted from the process's logs."""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_redaction_installed = False
_redaction_lock = threading.Lock()


def _remember_secret(secret: str) -> None:
    global _redaction_installed
    if len(secret) < 6:
        return
    _secrets.add(secret)
    if _redaction_installed:
        return
    with _redaction_lock:
        if _redaction_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            if _secrets:
                try:
                    message = record.getMessage()
                except Exception:  # a broken log call is not ours to fix
                    return record
                if any(secret in message for secret in _secrets):
                    for secret in list(_secrets):
                        message = message.replace(secret, "[redacted]")
                    record.msg, record.args = message, ()
            return record

        logging.setLogRecordFactory(factory)
        _redaction_installed = True


def redact(text: str) -> str:
    for secret in list(_secrets):
        text = text.replace(secret, "[redacted]")
    return text
