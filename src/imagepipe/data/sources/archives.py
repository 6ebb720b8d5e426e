"""Safe extraction of a `.zip`, `.tar`, `.tar.gz` or `.tgz` archive of an image folder.

An archive is extracted once into `<cache_dir>/<sha256 of the archive>/`: the same archive is
not extracted again, and the paths of unreadable files that errors and the manifest name stay
there to be inspected. Extraction goes into a hidden scratch folder beside it, renamed into
place only when complete, so a refused or failed archive leaves nothing behind.

Nothing may land outside that folder. Tar members go through Python's `data` extraction
filter (PEP 706), which refuses `..`, links out of the folder and device files; absolute
paths, which it would strip to relative ones, are refused too. Zip members are checked the
same way before anything is written, and zip symlinks are refused. Both refuse archives whose
headers declare more than MAX_UNPACKED_BYTES.
"""

import posixpath
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from imagepipe.core.errors import StageError
from imagepipe.data.shards import file_sha256

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
MAX_UNPACKED_BYTES = 4 << 30  # 4 GiB: far above any course dataset, far below a zip bomb
ZIP_ALLOWED = "allowed: unencrypted files and folders with relative paths that stay inside the archive"
TAR_ALLOWED = "allowed: files, folders and links with relative paths that stay inside the archive"
# By class name: Pythons before 3.11.4 lack these classes, and must still import this module.
_TAR_REFUSALS = {
    "AbsolutePathError": "is an absolute path",
    "OutsideDestinationError": "would be written outside the archive's folder",
    "SpecialFileError": "is a device, pipe or other special file",
    "AbsoluteLinkError": "is a link to an absolute path",
    "LinkOutsideDestinationError": "is a link pointing outside the archive's folder",
}
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveError(StageError):
    """An archive that is corrupt, too large, or has members that would escape its folder."""


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpacked_folder(archive: Path, cache_dir: Path) -> tuple[Path, str]:
    """The folder archive holds, extracted under cache_dir, and the archive's sha256.

    An archive whose only top-level entry is a folder is read from inside that folder."""
    digest = file_sha256(archive)
    target = cache_dir / digest
    if not target.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache_dir))
        try:
            extract(archive, scratch)
            _publish(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # already gone once published
    return single_root(target), digest


def single_root(folder: Path) -> Path:
    """The only folder inside folder when there is nothing else (hidden files and macOS's
    `__MACOSX` metadata aside), else folder itself."""
    entries = [child for child in folder.iterdir() if not child.name.startswith(".") and child.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def extract(archive: Path, target: Path) -> None:
    """Every member of archive into the empty folder target, or ArchiveError naming the
    member that would escape it; target may then hold part of the archive."""
    if archive.name.lower().endswith(".zip"):
        _extract_zip(archive, target)
    elif is_archive(archive):
        _extract_tar(archive, target)
    else:
        raise ArchiveError(f"{archive} is not an archive; allowed suffixes: {', '.join(ARCHIVE_SUFFIXES)}")


def _publish(scratch: Path, target: Path) -> None:
    try:
        scratch.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        # Another run extracted the same archive first; its copy is identical.


def _extract_zip(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            for member in members:
                if problem := zip_member_problem(member, target):
                    raise ArchiveError(
                        f"zip member {member.filename!r} in {archive} {problem}; refused ({ZIP_ALLOWED})"
                    )
            _check_size(archive, sum(member.file_size for member in members))
            # ZipFile never writes more than a member's declared file_size, so the cap holds
            # even for a header that lies.
            bundle.extractall(target)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise ArchiveError(f"{archive} is not a readable zip file: {error}") from None


def zip_member_problem(member: zipfile.ZipInfo, target: Path) -> str | None:
    """Why member cannot be extracted into target (its path would leave target, it is a
    symbolic link or encrypted), or None."""
    name = member.filename.replace("\\", "/")
    normal = posixpath.normpath(name)
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if normal == ".." or normal.startswith("../") or not (target / normal).resolve().is_relative_to(target.resolve()):
        return "would be written outside the archive's folder"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    if member.flag_bits & 0x1:
        return "is encrypted"
    return None


def _extract_tar(archive: Path, target: Path) -> None:
    if not hasattr(tarfile, "data_filter"):
        raise ArchiveError(
            f"{archive}: extracting tar files safely needs Python >= 3.11.4 (tarfile filters), "
            f"this is {sys.version.split()[0]}; use a .zip or a directory"
        )
    try:
        with tarfile.open(archive, "r:*") as bundle:
            _check_size(archive, sum(member.size for member in bundle.getmembers()))
            bundle.extractall(target, filter=_tar_filter)
    except tarfile.FilterError as error:
        reason = _TAR_REFUSALS.get(type(error).__name__, str(error))
        raise ArchiveError(
            f"tar member {error.tarinfo.name!r} in {archive} {reason}; refused ({TAR_ALLOWED})"
        ) from None
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise ArchiveError(f"{archive} is not a readable tar file: {error}") from None


def _tar_filter(member: tarfile.TarInfo, target: str) -> tarfile.TarInfo | None:
    """Python's data filter, but refusing an absolute path rather than making it relative:
    such an archive was not made to be unpacked into a folder."""
    if member.name.startswith("/") or _DRIVE.match(member.name):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, target)


def _check_size(archive: Path, unpacked_bytes: int) -> None:
    if unpacked_bytes > MAX_UNPACKED_BYTES:
        raise ArchiveError(
            f"{archive} would unpack to {unpacked_bytes:,} bytes, over the {MAX_UNPACKED_BYTES:,}-byte limit "
            "(a zip bomb, or too large a dataset: unpack it yourself and give data.source the directory)"
        )
