"""Small shared helpers: seeding, device choice, atomic writes, hashing, logging."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("stentrans")


def set_seed(seed: int) -> None:
    """Seed Python ``random``, numpy and torch (CPU and CUDA) from one integer."""
    import torch

    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        torch.cuda.manual_seed_all(seed)


def pick_device(device: str | None = "auto"):
    """CUDA when present (or when asked for), else CPU. Never hard-coded."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from ._errors import InputError

        raise InputError(None, "device", f"{device!r}: CUDA was requested but no CUDA device is available")
    return dev




def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a cgroup's or ``taskset``'s), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def thread_count(threads: int | None = None) -> int:
    """Threads to compute with: ``threads`` if given, else ``STENTRANS_THREADS`` (the workflow sets the rule's ``threads:``), else :func:`available_cores`."""
    if threads is None:
        env = os.environ.get("STENTRANS_THREADS", "").strip()
        threads = int(env) if env else available_cores()
    return max(1, int(threads))


def configure_threads(device="cpu", threads: int | None = None) -> int:
    """Set torch's and the BLAS library's threads to one number (:func:`thread_count`); returns it.

    Both pools are sized together: torch's default and numpy's BLAS (OpenBLAS)
    each start one thread per core of the machine, so a process that
    alternates between them (the robust variant: numpy eigendecompositions,
    torch convolutions) ran twice the threads it has cores for, and on a
    shared machine its waiting threads competed with the working ones. On a
    GPU only the CPU-side pools are set.
    """
    import torch

    n = thread_count(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")  # not a context: the limit stays for the process
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    return n


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; no-op elsewhere).

    Worker threads get their own malloc arenas, which keep what they freed:
    after threaded training ~2 GiB stayed resident on a Visium slide and added
    to the peak of the enhancement that followed.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc
        pass


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename onto ``path`` only on success.

    On any exception the temporary file is removed, so no partial output is
    left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + sfx, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give the result the usual umask permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def ordered(values, order) -> list:
    """Distinct ``values`` in the order of ``order``; values not in it last, as they come."""
    seen = list(dict.fromkeys(values))
    rank = {v: i for i, v in enumerate(order)}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), seen.index(v)))


def check_output(path, *, suffixes=(".h5ad",), field: str = "output", folder: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` once it is known to be writable; else an :class:`InputError`.

    Called before any work, so a mistake in the output costs nothing and
    leaves nothing behind. A file output must end in one of ``suffixes``
    (case-insensitive) and not be an existing folder (a ``.zarr`` store is
    a folder and may replace one); a ``folder`` output must not be an
    existing file. Either way the nearest existing folder at or above where
    it goes must take a new file: a probe file is created there and removed
    (permissions, read-only file systems and a file in the way all show).
    """
    from ._errors import InputError

    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise InputError(path, field, "exists and is not a folder")
        parent = path
    else:
        name = path.name.lower()
        if not any(name.endswith(s) for s in suffixes):
            raise InputError(path, field, f"suffix {path.suffix or '(none)'!r}: the output must end in {' or '.join(suffixes)}")
        if path.is_dir() and not name.endswith(".zarr"):
            raise InputError(path, field, "is an existing folder, not a file")
        parent = path.parent
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(path, field, f"cannot be written: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".stentrans-probe-", dir=parent)
    except OSError as err:
        raise InputError(path, field, f"cannot be written: {parent}: {err.strerror or type(err).__name__}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def jsonable(o):
    """``o`` with numpy scalars as Python numbers, tuples as lists, non-finite floats and ``pd.NA`` as None (for :mod:`json`)."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if o is not None and type(o).__name__ == "NAType":
        return None
    return o


def write_json(obj, path, indent: int = 2):
    """Write :func:`jsonable` of ``obj`` as JSON atomically; returns ``path``."""
    import json

    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(jsonable(obj), indent=indent))
    return path


def write_tsv(df, path, index: bool = False, **to_csv):
    """Write a DataFrame as TSV atomically; returns ``path``."""
    with atomic_path(path, suffix=".tsv") as tmp:
        df.to_csv(tmp, sep="\t", index=index, **to_csv)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def setup_logging(logfile: str | os.PathLike | None = None, *, level=logging.INFO) -> None:
    """Log to stderr and, when given, to ``logfile`` (the Snakemake rule's log)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
