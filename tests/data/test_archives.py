import hashlib
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imagepipe.data.sources import archives
from imagepipe.data.sources.archives import ArchiveError, unpacked_folder
from imagepipe.data.sources.decode import decode_files
from imagepipe.data.sources.image_folder import class_names, list_folder, resolve_source


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def tar_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with tarfile.open(archive, "w:gz") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.add(path, prefix + path.relative_to(folder).as_posix(), recursive=False)
    return archive


def tar_with(archive: Path, member: tarfile.TarInfo, content: bytes = b"") -> Path:
    """A tar of one harmless file, then member."""
    with tarfile.open(archive, "w") as bundle:
        good = tarfile.TarInfo("fine.txt")
        good.size = 2
        bundle.addfile(good, io.BytesIO(b"ok"))
        member.size = len(content)
        bundle.addfile(member, io.BytesIO(content))
    return archive


def read(root: Path):
    names = class_names([root])
    listing = list_folder(root, names)
    images = np.stack([decoded.image for decoded in decode_files(listing.paths, (28, 28, 1), cache_dir=None)])
    return names, images, np.asarray(listing.labels)


def files_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


@pytest.mark.parametrize(
    "make_archive, name, prefix", [(zip_folder, "fruits.zip", "fruits/"), (tar_folder, "fruits.tar.gz", "")]
)
def test_archive_reads_like_the_directory(image_folder, tmp_path, make_archive, name, prefix):
    """The zip wraps the classes in one top-level folder; the tar.gz holds them at its root."""
    archive = make_archive(image_folder, tmp_path / name, prefix)
    root, provenance = resolve_source(archive.as_uri(), tmp_path / "cache")
    expected_names, expected_images, expected_labels = read(image_folder)
    names, images, labels = read(root)
    assert names == expected_names == ["Apple Braeburn", "banana_ü", "cherry (red)"]
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    assert provenance == {"source": str(archive), "source_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}


def test_archive_is_extracted_once_per_content(image_folder, tmp_path):
    archive = zip_folder(image_folder, tmp_path / "fruits.zip", "fruits/")
    cache = tmp_path / "cache"
    first, digest = unpacked_folder(archive, cache)
    marker = first / "extracted once"
    marker.touch()
    again, _ = unpacked_folder(archive, cache)
    assert again == first == cache / digest / "fruits" and marker.exists()
    assert [child.name for child in cache.iterdir()] == [digest]


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "..\\evil.txt", "/tmp/x", "C:/evil.txt"])
def test_zip_escaping_its_folder_is_refused_and_leaves_nothing(tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("fruits/apple/a.txt", "fine")
        bundle.writestr(zipfile.ZipInfo(member), "evil")
    cache = tmp_path / "cache" / "image_folder"
    cache.mkdir(parents=True)
    before = files_under(tmp_path)
    with pytest.raises(ArchiveError) as caught:
        unpacked_folder(archive, cache)
    message = str(caught.value)
    assert repr(member) in message and str(archive) in message and "allowed: unencrypted files and folders" in message
    assert files_under(tmp_path) == before


def test_zip_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    link = zipfile.ZipInfo("fruits/passwd")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(link, "../../../../etc/passwd")
    with pytest.raises(ArchiveError, match=r"zip member 'fruits/passwd' .* is a symbolic link"):
        unpacked_folder(archive, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def symlink(name: str, target: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = tarfile.SYMTYPE, target
    return member


@pytest.mark.parametrize(
    "member, reason",
    [
        (tarfile.TarInfo("../evil.txt"), "would be written outside the archive's folder"),
        (tarfile.TarInfo("/tmp/x"), "is an absolute path"),
        (symlink("fruits/escape", "../../../outside"), "is a link pointing outside the archive's folder"),
        (symlink("fruits/passwd", "/etc/passwd"), "is a link to an absolute path"),
    ],
)
def test_tar_escaping_its_folder_is_refused_and_leaves_nothing(tmp_path, member, reason):
    archive = tar_with(tmp_path / "evil.tar", member, b"" if member.issym() else b"evil")
    cache = tmp_path / "cache" / "image_folder"
    cache.mkdir(parents=True)
    before = files_under(tmp_path)
    with pytest.raises(ArchiveError) as caught:
        unpacked_folder(archive, cache)
    assert str(caught.value) == (
        f"tar member {member.name!r} in {archive} {reason}; refused "
        "(allowed: files, folders and links with relative paths that stay inside the archive)"
    )
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_archive_declaring_more_than_the_cap_is_refused(tmp_path, monkeypatch, suffix):
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "zeros.bin").write_bytes(bytes(1000))  # compresses to a few bytes
    archive = (zip_folder if suffix == ".zip" else tar_folder)(folder, tmp_path / f"bomb{suffix}")
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", 999)
    with pytest.raises(ArchiveError, match=r"would unpack to 1,000 bytes, over the 999-byte limit"):
        unpacked_folder(archive, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("name, kind", [("broken.zip", "zip"), ("broken.tgz", "tar")])
def test_corrupt_archive_is_refused(tmp_path, name, kind):
    archive = tmp_path / name
    archive.write_bytes(b"PK\x03\x04 not really an archive")
    with pytest.raises(ArchiveError, match=rf"is not a readable {kind} file"):
        unpacked_folder(archive, tmp_path / "cache")


def test_unknown_archive_suffix_is_refused(tmp_path):
    archive = tmp_path / "fruits.rar"
    archive.write_bytes(b"Rar!")
    with pytest.raises(
        ArchiveError, match=r"fruits.rar is not an archive; allowed suffixes: .zip, .tar, .tar.gz, .tgz"
    ):
        archives.extract(archive, tmp_path)
