"""The default method, ``robust``: enhancement that holds up on spots the model never saw.

The paper-faithful model (:func:`stentrans.models.paper.train.fit`) learns ``Phi(D(G)) ~ G``
on raw counts and copies the input into every output channel ("Res"). Under
the ``nested`` protocol (docs/method.md section 5: observe ``D(G)``, fit only on
what ``D(G)`` gives, score the spots ``D`` removed) it loses to plain linear
interpolation on noisy data. Measured on the melanoma data (6,472 genes,
median per-gene PCC on raw counts at the 213 removed spots): paper model
0.066 (50 epochs), linear 0.102, this method 0.18; see
``benchmarks/robust_ablation.py`` for all data sets.

What the method does (each piece measured one at a time in the ablation):

* **scale** -- genes are library-size normalised (``10^4 x / l``, ``l`` the
  spot's total over all genes of the input) and standardised per gene; the
  prediction is multiplied back by a library size interpolated at every
  output position (log library, same Gaussian kernel), so every method is
  scored on raw counts.
* **two working scales** (the default ``scale="norm+counts"``,
  :mod:`.mixture`) -- the whole fit runs twice, on normalised and on raw
  counts (each with its own self-supervised rank and bandwidth), and the
  two predictions are averaged per gene (z-scores over the enhanced
  positions). Against real 2x truth from finer data neither scale wins
  everywhere (raw counts on per-cell data, where library size follows cell
  density), the self-supervised task does not tell which, and the average
  beats both (docs/realtruth.md; benchmarks/realtruth_ablation.py).
* **sharing across genes** -- spot factors: the leading left singular
  vectors of the input's standardised log1p-normalised spots x genes
  matrix, as many as the Gavish-Donoho threshold keeps; each gene is
  projected onto them (denoised).
* **base** -- normalised convolution (masked Gaussian, bandwidth ``sigma``
  lattice spacings, isotropic in physical distance on both lattices) of the
  denoised maps on the doubled grid, instead of nearest-neighbour copies.
* **self-supervised choices** -- ``rank`` (0 or the Gavish-Donoho rank) and
  ``sigma`` are chosen on the task ``D(T(G)) -> T(G)`` over the four phase
  offsets of ``D`` inside the input: never on the enhancement targets.
* **optional network** (``net=True``) -- the stEnTrans blocks (patch
  embedding, pre-LayerNorm transformer, reverse embedding to four sub-pixel
  channels, 2x2 merge) predict a correction to the base; zero-initialised
  head, no absolute position encoding by default, training pairs from all
  four cosets of ``D`` and the lattice symmetries (square: 8 rotations and
  flips; hex: row and column flips), each an exact sub-sampling of the
  input; loss on the positions ``D`` removed; early stopping on spatial
  blocks of spots held out of the training targets. It improves the
  self-supervised score yet does not carry over to the finer scale of the
  real task (the ablation shows it tying or losing), so it is off by default.

Everything is derived from the maps passed to :func:`~.fit.fit_robust`. Spot-level
context (library sizes, spot factors) is computed from *all* genes of an
input; :meth:`~.result.RobustResult.predict` reuses the context of the fitted input
when it gets the same grid and mask, so it can be called gene chunk by gene
chunk.

Modules: :mod:`.config` (settings, torch-free), :mod:`.ops` (kernels,
normalised convolution, bases), :mod:`.context` (library sizes, spot factors,
working scale), :mod:`.augment` (training pairs), :mod:`.net` (the network),
:mod:`.result` (the fitted model and its prediction), :mod:`.fit` (fitting),
:mod:`.mixture` (the two working scales) and :mod:`.enhancer` (the registry's interface).
"""
