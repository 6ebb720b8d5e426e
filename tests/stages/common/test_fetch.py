import functools
import gzip
import hashlib
import http.server
import threading

import pytest

from stages.common.fetch import DownloadError, Resource, fetch_all

PAYLOAD = b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03"


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
        fetch_all([resource], [str(tmp_path / "nowhere"), "gopher://old/"], tmp_path)
    assert "nowhere is not a directory" in str(caught.value)
    assert "unsupported source scheme 'gopher'" in str(caught.value)
