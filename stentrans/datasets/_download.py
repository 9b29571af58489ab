"""Checked downloads: stream a URL to disk, verify its sha256, then rename.

:func:`download` is what ``stentrans download`` and the workflow's ``download``
rule call. A file only appears under its final name once it is complete and
(when a hash is given) verified; a failed or mismatched download leaves nothing
behind. Connection errors, timeouts and HTTP 5xx/429 answers are retried with
exponential back-off; other HTTP errors fail at once.

:func:`fetch` fetches the several files of one sample into a folder
(``name=URL`` entries rename, ``.tar.gz``/``.zip`` archives are unpacked) and
:func:`data_path` tells which path in that folder to read.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import InputError
from .._version import __version__

log = logging.getLogger("stentrans.download")

__all__ = ["DownloadConfig", "download", "fetch", "data_path", "parse_locations", "parse_sha256s", "check_sha256"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
_ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")



@dataclass
class DownloadConfig:
    """Retry and timeout settings of :func:`download` (their defaults, written once here)."""

    retries: int = field(default=3, metadata={"help": "retries on connection errors and HTTP 5xx"})
    backoff: float = field(default=1.0, metadata={"help": "seconds before the first retry, doubled after each"})
    timeout: float = field(default=60.0, metadata={"help": "socket timeout per attempt in seconds"})


_DL = DownloadConfig()

class _Retryable(Exception):
    """A failure worth another try (network trouble, 5xx, short read)."""


def _norm_sha(url, sha256):
    if sha256 is None or str(sha256).strip() == "":
        return None
    h = str(sha256).strip().lower()
    if not _HEX64.match(h):
        raise InputError(url, "sha256", f"{sha256!r} is not a sha256 hex digest (64 hex characters)")
    return h


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path, sha256, source=None) -> str:
    """Hash ``path``; raise :class:`InputError` unless it equals ``sha256`` (when given).

    Returns the actual hex digest.
    """
    path = Path(path)
    expected = _norm_sha(source or path, sha256)
    actual = _sha256_of(path)
    if expected is not None and actual != expected:
        raise InputError(source or path, "sha256", f"checksum mismatch: expected {expected}, got {actual}")
    return actual


def _target(url: str, dest) -> Path:
    as_dir = str(dest).endswith(("/", os.sep))
    dest = Path(dest)
    if as_dir or dest.is_dir():
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
        if not name:
            raise InputError(url, "url", "cannot tell a file name from the URL; give a file as destination")
        dest = dest / name
    return dest


def _open(url: str, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": f"stentrans/{__version__} (python urllib)"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from None
        raise InputError(url, None, f"download failed: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if url.startswith("file:") or isinstance(reason, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise InputError(url, None, f"cannot read: {reason}") from None
        raise _Retryable(f"{reason}") from None
    except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {err}") from None


def _stream(url: str, tmp: Path, timeout: float) -> tuple[str, int]:
    """One attempt: copy the body into ``tmp`` while hashing; (sha256, bytes)."""
    h = hashlib.sha256()
    n = 0
    with _open(url, timeout) as resp:
        length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        expected_len = int(length) if length and str(length).isdigit() else None
        next_report = 64 << 20
        try:
            with open(tmp, "wb") as out:
                while True:
                    block = resp.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    h.update(block)
                    n += len(block)
                    if n >= next_report:
                        log.info("%s: %d MiB%s", url, n >> 20, f" of {expected_len >> 20} MiB" if expected_len else "")
                        next_report += 64 << 20
        except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise _Retryable(f"connection lost after {n} bytes ({type(err).__name__}: {err})") from None
    if expected_len is not None and n != expected_len:
        raise _Retryable(f"short read: got {n} of {expected_len} bytes")
    return h.hexdigest(), n


def download(url: str, dest, sha256: str | None = None, retries: int = _DL.retries, backoff: float = _DL.backoff, timeout: float = _DL.timeout) -> Path:
    """Download ``url`` to ``dest``, verifying ``sha256`` when given.

    Parameters
    ----------
    url
        ``http://``, ``https://`` or ``file://`` URL.
    dest
        Target file, or an existing folder (the URL's file name is used).
    sha256
        Expected hex digest. On a mismatch nothing is left at ``dest`` and
        :class:`~stentrans.InputError` names the URL, the expected and the
        actual hash. Without it, the actual hash is logged so it can be pinned.
    retries
        Further attempts after the first on connection errors, timeouts,
        short reads and HTTP 408/425/429/5xx.
    backoff
        Seconds before the first retry; doubled for every further one.
    timeout
        Socket timeout per attempt, in seconds.

    Returns
    -------
    The path of the downloaded file.
    """
    scheme = urllib.parse.urlparse(str(url)).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise InputError(url, "url", f"unsupported scheme {scheme or '(none)'!r}; use http://, https:// or file://")
    expected = _norm_sha(url, sha256)
    target = _target(url, dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    if expected is not None and target.is_file() and _sha256_of(target) == expected:
        log.info("%s: already present with the expected sha256", target)
        return target
    attempts = max(0, int(retries)) + 1
    last = ""
    for attempt in range(attempts):
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            t0 = time.perf_counter()
            actual, n = _stream(url, tmp, timeout)
            if expected is not None and actual != expected:
                raise InputError(url, "sha256", f"checksum mismatch: expected {expected}, got {actual}")
            os.replace(tmp, target)
            dt = time.perf_counter() - t0
            log.info("%s -> %s: %d bytes in %.1f s, sha256 %s%s", url, target, n, dt, actual, "" if expected else " (not pinned)")
            return target
        except _Retryable as err:
            last = str(err)
            if attempt + 1 < attempts:
                wait = float(backoff) * (2**attempt)
                log.warning("%s: attempt %d of %d failed (%s); retrying in %.2g s", url, attempt + 1, attempts, last, wait)
                time.sleep(wait)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    raise InputError(url, None, f"download failed after {attempts} attempt(s): {last}")


# ------------------------------------------------------------ sample folders
def parse_locations(text: str) -> list[tuple[str | None, str]]:
    """Split a samples-table ``location`` into ``(name, url)`` pairs.

    Entries are separated by ``;`` (or white space); ``name=URL`` saves the
    download as ``name`` (e.g. ``filtered_feature_bc_matrix.h5=https://...``).
    """
    out: list[tuple[str | None, str]] = []
    for entry in re.split(r"[;\s]+", str(text).strip()):
        if not entry:
            continue
        name, sep, rest = entry.partition("=")
        if sep and "://" in rest and "://" not in name and "/" not in name.strip("/"):
            out.append((name, rest))
        else:
            out.append((None, entry))
    return out


def parse_sha256s(text, n: int) -> list[str | None]:
    """``;``-separated hashes aligned with the locations (empty: none)."""
    parts = [p.strip() for p in re.split(r"[;\s]+", str(text or "").strip()) if p.strip()]
    if not parts:
        return [None] * n
    if len(parts) != n:
        raise InputError(None, "sha256", f"{len(parts)} hash(es) given for {n} location(s); give one per location or none")
    return parts


def _is_archive(name: str) -> bool:
    return name.lower().endswith(_ARCHIVES)


def _unpack(archive: Path, folder: Path) -> None:
    folder = folder.resolve()
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if not (folder / member).resolve().is_relative_to(folder):
                    raise InputError(archive, "archive", f"member {member!r} would land outside {folder}")
            zf.extractall(folder)
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(folder, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                for member in tf.getmembers():
                    if member.issym() or member.islnk() or not (folder / member.name).resolve().is_relative_to(folder):
                        raise InputError(archive, "archive", f"member {member.name!r} is a link or lands outside {folder}")
                tf.extractall(folder)


def fetch(locations, dest_dir, sha256s=None, retries: int = _DL.retries, backoff: float = _DL.backoff) -> Path:
    """Fetch every location of one sample into ``dest_dir`` (created).

    ``locations`` is a samples-table ``location`` string or a list of
    ``(name, url)``; archives are unpacked into ``dest_dir`` and removed.
    Returns ``dest_dir``.
    """
    pairs = parse_locations(locations) if isinstance(locations, str) else list(locations)
    if not pairs:
        raise InputError(None, "location", "no URL given")
    hashes = parse_sha256s(sha256s, len(pairs)) if not isinstance(sha256s, (list, tuple)) else list(sha256s)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for (name, url), sha in zip(pairs, hashes):
        target = dest / name if name else dest
        path = download(url, target, sha256=sha, retries=retries, backoff=backoff)
        if _is_archive(path.name):
            log.info("unpacking %s", path.name)
            _unpack(path, dest)
            path.unlink()
    return dest


def data_path(folder) -> Path:
    """The path to read in a fetched folder: its only file, else the folder itself.

    A folder holding a Space Ranger ``outs`` layout (several files) is read as
    a whole; a folder holding one table or one ``.h5ad`` is read as that file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_file():
        return entries[0]
    return folder
