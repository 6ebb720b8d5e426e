import contextlib
import functools
import gzip
import hashlib
import http.server
import logging
import socket
import threading
import time
from urllib.parse import urlparse

import pooch
import pytest

from imagepipe.data.sources import fetch
from imagepipe.data.sources.fetch import DownloadError, Resource, fetch_all
from tests.helpers.servers import free_port

PAYLOAD = b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03"
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"


@pytest.fixture
def published(tmp_path):
    """A mirror directory with one gzipped file, and its resource entry."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    compressed = gzip.compress(PAYLOAD, mtime=0)
    (mirror / "labels.gz").write_bytes(compressed)
    resource = Resource("labels.gz", hashlib.sha256(compressed).hexdigest(), hashlib.sha256(PAYLOAD).hexdigest())
    return mirror, resource


@pytest.fixture
def http_mirror(published):
    """The mirror served over HTTP on 127.0.0.1."""
    mirror, resource = published
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", resource
    server.shutdown()


def test_directory_and_file_url(published, tmp_path):
    mirror, resource = published
    for source in (str(mirror), mirror.as_uri()):
        used, content = fetch_all([resource], [source], tmp_path / "cache")
        assert (used, content) == (source, {"labels.gz": PAYLOAD})


def test_http_download_is_verified_and_cached(http_mirror, tmp_path):
    url, resource = http_mirror
    used, content = fetch_all([resource], [url], tmp_path / "cache")
    assert used == url and content["labels.gz"] == PAYLOAD
    assert (tmp_path / "cache" / "labels.gz").exists()


def test_recompressed_or_decompressed_mirror_accepted_by_content_hash(published, tmp_path):
    mirror, resource = published
    (mirror / "labels.gz").write_bytes(gzip.compress(PAYLOAD, compresslevel=1, mtime=12345))
    assert fetch_all([resource], [str(mirror)], tmp_path)[1]["labels.gz"] == PAYLOAD
    (mirror / "labels.gz").unlink()
    (mirror / "labels").write_bytes(PAYLOAD)
    assert fetch_all([resource], [str(mirror)], tmp_path)[1]["labels.gz"] == PAYLOAD


def test_checksum_mismatch_names_file_and_hashes(published, tmp_path):
    mirror, resource = published
    (mirror / "labels.gz").write_bytes(gzip.compress(PAYLOAD + b"\x04"))
    with pytest.raises(DownloadError) as caught:
        fetch_all([resource], [str(mirror)], tmp_path)
    message = str(caught.value)
    assert f"checksum mismatch for {mirror / 'labels.gz'}" in message
    assert resource.sha256 in message


def test_truncated_file_is_reported(published, tmp_path):
    mirror, resource = published
    data = (mirror / "labels.gz").read_bytes()
    (mirror / "labels.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError, match="labels.gz is truncated or corrupt"):
        fetch_all([resource], [str(mirror)], tmp_path)


def test_http_checksum_mismatch_leaves_nothing_in_cache(http_mirror, published, tmp_path):
    url, resource = http_mirror
    mirror, _ = published
    (mirror / "labels.gz").write_bytes(b"not the file")
    with pytest.raises(DownloadError, match="SHA256 hash of downloaded file"):
        fetch_all([resource], [url], tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("labels*"))


def test_falls_back_to_next_source_and_lists_every_failure(published, tmp_path):
    mirror, resource = published
    used, _ = fetch_all([resource], [str(tmp_path / "nowhere"), str(mirror)], tmp_path)
    assert used == str(mirror)
    with pytest.raises(DownloadError) as caught:
        fetch_all([resource], [str(tmp_path / "nowhere"), "ftp://mirror.invalid/pub/"], tmp_path)
    assert "nowhere is not a directory" in str(caught.value)
    assert "unsupported source scheme 'ftp'" in str(
        caught.value
    ) and "allowed: http, https, file, or a directory" in str(caught.value)


def silent(connection: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def headers_then_silent(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(HEADERS)
    stop.wait()


def trickle(connection: socket.socket, stop: threading.Event) -> None:
    """One byte every 0.5 s: each read arrives well within any read timeout."""
    connection.sendall(HEADERS)
    while not stop.wait(0.5):
        connection.sendall(b"x")


@pytest.fixture
def slow_server():
    """start(behaviour): a loopback TCP server giving each connection behaviour(connection, stop); its port."""
    stop = threading.Event()

    def serve(listener: socket.socket, behaviour) -> None:
        with listener:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=answer, args=(connection, behaviour), daemon=True).start()

    def answer(connection: socket.socket, behaviour) -> None:
        with connection, contextlib.suppress(OSError):  # OSError: the client hung up
            behaviour(connection, stop)

    def start(behaviour) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        threading.Thread(target=serve, args=(listener, behaviour), daemon=True).start()
        return listener.getsockname()[1]

    yield start
    stop.set()


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [(silent, "Read timed out"), (headers_then_silent, "Read timed out"), (trickle, "still incomplete after 2 s")],
)
def test_stalled_or_trickling_mirror_gives_way_to_the_next(
    slow_server, idx_mirror, tmp_path, monkeypatch, caplog, behaviour, reason
):
    monkeypatch.setattr(fetch, "DOWNLOAD_TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(fetch, "DOWNLOAD_DEADLINE_SECONDS", 2)
    mirror, spec = idx_mirror
    port = slow_server(behaviour)
    started = time.monotonic()
    used, content = fetch_all(
        list(spec.resources), [f"http://u:s3cret@127.0.0.1:{port}/", str(mirror)], tmp_path / "cache"
    )
    assert time.monotonic() - started < 8
    assert used == str(mirror) and sorted(content) == sorted(res.filename for res in spec.resources)
    [warning] = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.startswith(f"source http://***@127.0.0.1:{port}/ failed: ") and reason in warning


@pytest.mark.parametrize("failure", ["nothing listening", "404"])
def test_credentials_of_a_failing_source_stay_out_of_errors_and_logs(http_mirror, tmp_path, caplog, failure):
    url, resource = http_mirror
    port = free_port() if failure == "nothing listening" else urlparse(url).port
    source = f"http://u:s3cret@127.0.0.1:{port}/"
    caplog.set_level(logging.DEBUG)
    # pooch's logger is outside logging's tree, so caplog hears it only when added to it.
    pooch.get_logger().addHandler(caplog.handler)
    try:
        with pytest.raises(DownloadError) as caught:
            fetch_all([Resource("absent.gz", resource.sha256)], [source], tmp_path / "cache")
    finally:
        pooch.get_logger().removeHandler(caplog.handler)
    assert f"http://***@127.0.0.1:{port}/" in str(caught.value)
    assert ("404" in str(caught.value)) == (failure == "404")
    assert f"Downloading data from 'http://***@127.0.0.1:{port}/absent.gz'" in caplog.text
    assert "s3cret" not in str(caught.value) + caplog.text
