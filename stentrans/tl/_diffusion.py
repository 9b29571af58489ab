"""Sepal's diffusion engine: the update operator, the input normalisation and
the time stepping of all genes at once (numpy/scipy on CPU, torch on CUDA).

The method, its constants and where they come from are described in
:mod:`stentrans.tl._sepal`; this module holds the numerics only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .._errors import InputError
from ..lattice import LATTICES, NEIGHBOUR_OFFSETS

__all__ = ["SepalConfig", "diffusion_operator", "normalize_profiles", "diffusion_times", "DT", "THRESH", "PSEUDOCOUNT", "MAX_ITER"]

#: time step per lattice kind (authors' published ST / Visium results, see :mod:`stentrans.tl._sepal`)
DT = {"square": 1e-3, "hex": 1e-2}
#: entropy-change threshold (``sepal run --threshold`` default)
THRESH = 1e-8
#: pseudocount of ``log2(x + c)`` (``sepal run --pseudocount`` default)
PSEUDOCOUNT = 2.0
#: step limit per gene (the authors have none; far above any time on real data)
MAX_ITER = 100_000
#: neighbours of a saturated (interior) node
FULL_DEGREE = {k: len(v) for k, v in NEIGHBOUR_OFFSETS.items()}


@dataclass(frozen=True)
class SepalConfig:
    """Sepal settings (their defaults are the package's, written once here)."""

    max_iter: int = field(default=MAX_ITER, metadata={"help": "step limit per gene; a gene stopped there has a lower-bound time"})
    dt: float | None = field(default=None, metadata={"help": "time step; default DT of the lattice (0.001 square, 0.01 hex)"})
    thresh: float = field(default=THRESH, metadata={"help": "convergence threshold on the change of entropy per saturated node"})
    normalize: bool = field(default=True, metadata={"help": "diffuse log2(x + pseudocount) / max per gene (the authors'); off: X as it is"})
    pseudocount: float = field(default=PSEUDOCOUNT, metadata={"help": "pseudocount of the log2 normalisation"})
    h: float | None = field(default=None, metadata={"help": "neighbour spacing in units of the measured lattice; default 1 (measured), 0.5 (enhanced)"})
    ties: str = field(default="mean", metadata={"help": "boundary nodes with equally near saturated nodes: mean of their changes, or the first's", "choices": ("mean", "first")})
    dtype: str | None = field(default=None, metadata={"help": "float64 (default on CPU) or float32 (default on CUDA)"})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when present) | cpu | cuda"})


_S = SepalConfig()


# --------------------------------------------------------------------------
# operator
# --------------------------------------------------------------------------
def diffusion_operator(adj, positions, lattice: str, h: float = 1.0, ties: str = _S.ties):
    """Sepal's update operator ``L`` (``dc/dt = L c``) and the saturated nodes.

    Parameters
    ----------
    adj
        ``(n, n)`` 0/1 adjacency (:func:`spot_graph`).
    positions
        ``(n, 2)`` positions in units of the neighbour spacing (for the
        nearest saturated node of each boundary node).
    lattice
        ``"square"`` (five-point stencil) or ``"hex"`` (seven-point stencil).
    h
        Lattice spacing (1 in the authors' scaled coordinates).
    ties
        A boundary node with several equally near saturated nodes takes the
        ``"mean"`` of their changes (default; independent of spot order) or
        the change of the ``"first"`` (lowest index, what squidpy's rule
        gives on hole-free lattices). The authors take whichever
        ``numpy.argsort`` puts first, i.e. an arbitrary one.

    Returns
    -------
    L : scipy.sparse.csr_matrix
        Row ``i`` of a saturated node is the stencil; the row of an
        unsaturated node is the (mean) row of its nearest saturated node(s).
    saturated : bool array
    """
    if lattice not in LATTICES:
        raise ValueError(f"lattice must be one of {LATTICES}, got {lattice!r}")
    if ties not in ("mean", "first"):
        raise ValueError(f"ties must be 'mean' or 'first', got {ties!r}")
    A = sp.csr_matrix(adj, dtype=np.float64, copy=True)
    A.data[:] = 1.0
    A.eliminate_zeros()
    n = A.shape[0]
    k = FULL_DEGREE[lattice]
    deg = np.diff(A.indptr)
    saturated = deg == k
    if not saturated.any():
        raise InputError(None, "spots", f"no spot has all {k} neighbours on the {lattice} lattice; Sepal needs interior spots")
    w = 1.0 / h**2 if lattice == "square" else 2.0 / (3.0 * h**2)
    stencil = sp.csr_matrix((A - sp.diags(deg.astype(float))) * w)
    rows, cols, vals = [np.flatnonzero(saturated)], [np.flatnonzero(saturated)], [np.ones(int(saturated.sum()))]
    uns = np.flatnonzero(~saturated)
    if uns.size:
        from scipy.spatial import cKDTree

        sat = np.flatnonzero(saturated)
        pos = np.asarray(positions, float)
        tree = cKDTree(pos[sat])
        d, _ = tree.query(pos[uns], k=1)
        cand = tree.query_ball_point(pos[uns], d + 1e-9)
        for j, cc in zip(uns, cand):
            cc = sat[np.sort(np.asarray(cc, dtype=np.int64))]
            if ties == "first":
                cc = cc[:1]
            rows.append(np.full(cc.size, j))
            cols.append(cc)
            vals.append(np.full(cc.size, 1.0 / cc.size))
    P = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    L = sp.csr_matrix(P @ stencil)
    L.sort_indices()
    return L, saturated


def normalize_profiles(X, *, pseudocount: float = _S.pseudocount) -> np.ndarray:
    """``log2(x + pseudocount) / max`` per gene (column); negatives clipped to 0 first."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = np.log2(np.clip(X.astype(np.float64, copy=False), 0, None) + pseudocount)
    mx = np.abs(X).max(axis=0, keepdims=True)
    return np.divide(X, mx, out=np.zeros_like(X), where=mx > 0)


# --------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------
def _use_torch(device, backend: str = "auto") -> tuple[bool, object]:
    """CUDA (or another explicit torch device) -> torch; CPU -> numpy/scipy.

    On CPU, scipy's CSR x dense product and numpy's element-wise kernels are
    several times faster than torch's sparse CPU path for these shapes;
    ``backend="torch"`` forces torch (used by the tests on CPU).
    """
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy":
        return False, "cpu"
    if backend == "torch":
        from .._utils import pick_device

        return True, pick_device(device)
    if device in (None, "auto"):
        try:
            import torch

            if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
                return True, torch.device("cuda")
        except ImportError:  # pragma: no cover
            pass
        return False, "cpu"
    if str(device) == "cpu":
        return False, "cpu"
    from .._utils import pick_device

    return True, pick_device(device)


def diffusion_times(
    C0: np.ndarray,
    L,
    saturated: np.ndarray,
    dt: float,
    thresh: float = _S.thresh,
    max_iter: int = _S.max_iter,
    device=_S.device,
    dtype: str = "float64",
    compact: float = 0.05,
    backend: str = "auto",
    chunk_mb: float = 256,
):
    """Advance all profiles (columns of ``C0``) together until each converges.

    ``C0`` is ``(n_spots, n_genes)``, ``L`` the operator of
    :func:`diffusion_operator`. Each step is ``C <- max((I + dt L) C, 0)``
    for all active genes; a gene leaves the working set at the first step
    where its entropy per saturated node changes by at most ``thresh``
    (converged genes are dropped in batches of ``compact`` x active genes;
    the extra steps they take meanwhile do not change their recorded time).
    Genes are processed in chunks of about ``chunk_mb`` MiB per working array
    (all genes at once for a few hundred spots).

    Returns ``(times, converged, steps)``; unconverged genes get
    ``max_iter * dt`` (a lower bound) and ``converged = False``.
    """
    C0 = np.asarray(C0)
    n, g = C0.shape
    steps = np.zeros(g, dtype=np.int64)
    converged = np.zeros(g, dtype=bool)
    if g == 0:
        return np.zeros(0), converged, steps
    saturated = np.asarray(saturated, dtype=bool)
    # saturated nodes first: the entropy then reads a contiguous block of rows
    order = np.concatenate([np.flatnonzero(saturated), np.flatnonzero(~saturated)])
    n_sat = int(saturated.sum())
    M = sp.csr_matrix(sp.csr_matrix(L)[order][:, order] * dt + sp.identity(n, format="csr"))
    M.sort_indices()
    limit = thresh * n_sat  # |H_t - H_{t-1}| / n_sat <= thresh
    np_dtype = {"float64": np.float64, "float32": np.float32}[str(dtype)]
    M = M.astype(np_dtype)
    torch_path, dev = _use_torch(device, backend)
    C = np.ascontiguousarray(C0[order], dtype=np_dtype)
    active = np.arange(g)
    # a profile with nothing on the saturated nodes never starts (time 0)
    alive = C[:n_sat].sum(0) > 0
    converged[~alive] = True
    C, active = np.ascontiguousarray(C[:, alive]), active[alive]
    if active.size == 0:
        return steps * dt, converged, steps
    # genes are independent: process them in chunks of ~``chunk_mb`` per array
    chunk = max(64, int(chunk_mb * 2**20 / (C.itemsize * n)))
    for start in range(0, active.size, chunk):
        sub = np.ascontiguousarray(C[:, start : start + chunk])
        ids_sub = active[start : start + chunk]
        if torch_path:
            run = _steps_torch(sub, M, n_sat, limit, max_iter, dev)
        else:
            run = _steps_numpy(sub, M, n_sat, limit, max_iter, compact)
        for local_ids, step in run:
            ids = ids_sub[local_ids]
            steps[ids] = step
            converged[ids] = step <= max_iter
    steps = np.minimum(steps, max_iter)
    return steps * dt, converged, steps


def _steps_numpy(C, M, n_sat, limit, max_iter, compact):
    """Yield ``(column ids into the initial C, step)`` as genes converge; CPU."""
    g0 = C.shape[1]
    cols = np.arange(g0)  # current column -> initial column
    # the authors start from H = 1 (per-node entropy) before the first step
    H_prev = np.full(g0, float(n_sat), dtype=np.float64)
    done_total = np.zeros(g0, dtype=bool)  # per current column
    tiny = np.finfo(C.dtype).tiny
    buf = np.empty((n_sat, g0), dtype=C.dtype)
    n_done = 0
    step = 0
    while cols.size and step < max_iter:
        step += 1
        C = M @ C
        np.maximum(C, 0, out=C)
        Cs = C[:n_sat]
        S = Cs.sum(0, dtype=np.float64)
        lg = buf[:, : Cs.shape[1]]
        np.maximum(Cs, tiny, out=lg)
        np.log(lg, out=lg)
        H = np.log(S) - np.einsum("ij,ij->j", Cs, lg, dtype=np.float64) / S
        new = (np.abs(H - H_prev) <= limit) | (S <= 0)
        new &= ~done_total
        H_prev = H
        if new.any():
            yield cols[new], step
            done_total |= new
            n_done += int(new.sum())
            if n_done >= max(1, compact * cols.size) or n_done == cols.size:
                keep = ~done_total
                C = np.ascontiguousarray(C[:, keep])
                cols, H_prev, done_total = cols[keep], H_prev[keep], done_total[keep]
                n_done = 0
    left = cols[~done_total]
    if left.size:
        yield left, max_iter + 1


def _steps_torch(C, M, n_sat, limit, max_iter, dev):
    """Same as :func:`_steps_numpy` with torch tensors (CUDA; tested on CPU)."""
    import torch

    from .._utils import configure_threads

    configure_threads(dev)
    tdt = torch.float64 if C.dtype == np.float64 else torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        Mt = torch.sparse_csr_tensor(
            torch.as_tensor(M.indptr, dtype=torch.int64),
            torch.as_tensor(M.indices, dtype=torch.int64),
            torch.as_tensor(M.data, dtype=tdt),
            size=M.shape,
        ).to(dev)
    Ct = torch.as_tensor(C, device=dev)
    cols = torch.arange(C.shape[1], device=dev)
    H_prev = torch.full((C.shape[1],), float(n_sat), dtype=torch.float64, device=dev)
    step = 0
    while cols.numel() and step < max_iter:
        step += 1
        Ct = torch.clamp_(Mt @ Ct, min=0)
        Cs = Ct[:n_sat]
        S = Cs.sum(0, dtype=torch.float64)
        H = torch.log(S) - torch.special.xlogy(Cs, Cs).sum(0, dtype=torch.float64) / S
        new = ((H - H_prev).abs() <= limit) | (S <= 0)
        H_prev = H
        # one device->host sync per step is the cost of exact stop times
        if bool(new.any()):
            yield cols[new].cpu().numpy(), step
            keep = ~new
            Ct, cols, H_prev = Ct[:, keep].contiguous(), cols[keep], H_prev[keep]
    if cols.numel():
        yield cols.cpu().numpy(), max_iter + 1
