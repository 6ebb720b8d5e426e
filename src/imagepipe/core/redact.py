"""Credentials kept out of what reaches people: logs, error messages, artifacts, MLflow tags.

Every URL in a text loses its userinfo (`scheme://user:password@host` and `scheme://user@host`
become `scheme://***@host`), and every query parameter whose name looks like a secret (a
token, key, secret, password, signature or credential, or any of S3's `X-Amz-*` parameters
of a presigned URL) has its value replaced by `***`. Names are matched generously: hiding a
harmless value costs less than showing a secret one.
"""

import logging
import re

MASK = "***"
# The authority's userinfo runs up to its last "@": a password may hold an unescaped "@".
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"<>]+@")
_NAME_CHAR = r"[^=&;#\s'\"<>]"
_SECRET_NAME = rf"{_NAME_CHAR}*(?:token|key|secret|passw|pwd|sig|credential|auth){_NAME_CHAR}*|X-Amz-{_NAME_CHAR}+"
_SECRET_PARAMETER = re.compile(rf"(?P<name>[?&;](?:{_SECRET_NAME})=)[^&;#\s'\"<>]*", re.IGNORECASE)


def redact(text: str) -> str:
    """text with every URL's userinfo and every secret-looking query value replaced by ***."""
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    return _SECRET_PARAMETER.sub(rf"\g<name>{MASK}", text)


class RedactingFilter(logging.Filter):
    """Redacts every record of the logger it is added to: for libraries that log URLs as given."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True
