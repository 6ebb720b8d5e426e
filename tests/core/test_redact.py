import logging

import pytest

from imagepipe.core.redact import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://u:s3cret@127.0.0.1:8080/data/", "http://***@127.0.0.1:8080/data/"),
        ("ftp://anonymous@mirror.example/pub", "ftp://***@mirror.example/pub"),
        ("https://u:p@ss@host/x", "https://***@host/x"),
        (
            "https://b.s3.amazonaws.com/f.gz?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ab12&versionId=3",
            "https://b.s3.amazonaws.com/f.gz?X-Amz-Credential=***&X-Amz-Signature=***&versionId=3",
        ),
        ("http://h/f?access_token=t0k&page=2&api_key=k3y#top", "http://h/f?access_token=***&page=2&api_key=***#top"),
        ("http://h/f?Password=pw;sig=s1", "http://h/f?Password=***;sig=***"),
        (
            "source http://u:s3cret@a/ failed: 401 for url: http://u:s3cret@a/x?token=t0k",
            "source http://***@a/ failed: 401 for url: http://***@a/x?token=***",
        ),
        ('data.source="https://u:s3cret@h/d" epochs=3', 'data.source="https://***@h/d" epochs=3'),
    ],
)
def test_credentials_are_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/#/runs/0b83",
        "http://h/path/user@domain.png?page=2&size=10",
        "mailto:someone@example.com and /data/raw",
        "sqlite:///mlflow.db",
    ],
)
def test_text_without_credentials_is_unchanged(text):
    assert redact(text) == text


def test_filter_redacts_the_formatted_message(caplog):
    logger = logging.getLogger("tests.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="tests.redact"):
        logger.info("Downloading data from '%s' to file '%s'.", "http://u:s3cret@h/f.gz", "/tmp/f.gz")
    assert caplog.messages == ["Downloading data from 'http://***@h/f.gz' to file '/tmp/f.gz'."]
