"""Baselines for 2x resolution enhancement: Linear, Cubic, NN, NEDI and DIST.

Every method has the same inputs and predicts the same positions as stEnTrans
(docs/method.md section 1, 2 and 5), through one function::

    upsample(maps, mask, lattice, method, out_mask=None, **kw)
        -> float32 array (n_genes, 2u, 2v)

Geometry
--------
* ``maps`` is ``(n_genes, u, v)`` on the measured grid; ``mask`` ``(u, v)``
  marks the measured in-tissue spots. Values outside ``mask`` are ignored
  (treated as missing, never as zeros).
* Output pixel ``(P, Q)`` of the doubled grid lies at input-pixel coordinate
  ``(P / 2, Q / 2)``; measured spot ``(p, q)`` is output pixel ``(2p, 2q)``.
* Distances and interpolation use physical positions: ``(row, col)`` on the
  square lattice, ``(row * sqrt(3), col)`` on the hex lattice (in column
  units, so the Visium neighbours ``(0, +-2)`` and ``(+-1, +-1)`` are all at
  distance 2).
* ``out_mask`` ``(2u, 2v)`` (default :func:`stentrans.lattice.enhanced_mask`,
  i.e. H(M)) says which outputs are wanted; all others are 0.

Methods
-------
``linear``, ``cubic``
    :class:`scipy.interpolate.LinearNDInterpolator` /
    :class:`~scipy.interpolate.CloughTocher2DInterpolator` on one Delaunay
    triangulation of the measured spots' physical positions, all genes at
    once (values matrix ``(n_spots, n_genes)``). Positions outside the convex
    hull take the nearest spot's value (``nn``). On square lattices the
    triangulation of a square cell is degenerate; qhull picks one diagonal.
``nn``
    Value of the nearest measured spot by physical distance; ties go to the
    spot that comes first in row-major order of the grid (smallest ``p``,
    then smallest ``q``). Distances are compared exactly (integer arithmetic
    in half-pixel units), so the tie-break is deterministic.
``nedi``
    New Edge-Directed Interpolation (Li & Orchard 2001), see :func:`~.nedi.nedi`.
``dist``
    DIST (Zhao, Wang & Hu 2023), see :class:`~.dist.DISTNet` and :func:`~.dist.train_dist`.

Linear, Cubic, NN and NEDI return the input exactly at the measured spots
``(2p, 2q)``. DIST re-predicts the measured spots as well (as the original
does, it "enhances" them): after training they are close to the input because
of its residual skip, but not equal.

Modules: :mod:`.config` (settings of NEDI and DIST, torch-free),
:mod:`.interp` (input checks, scattered-data interpolation: linear, cubic,
nn), :mod:`.nedi`, :mod:`.dist`, :mod:`.dispatch` (:func:`upsample`, the one
function) and :mod:`.enhancer` (the registry's interface).
"""
