"""Fitting any registered method on an AnnData's genes (``tl.train``)."""

from __future__ import annotations

from ..models import registry


def train(
    adata,
    *,
    method: str | None = None,
    genes=None,
    layer: str | None = None,
    seed: int = 0,
    device="auto",
    checkpoint=None,
    resume: bool = False,
    progress: bool = True,
    **settings,
):
    """Fit a registered method on the genes of ``adata`` (self-supervised).

    Parameters
    ----------
    adata
        Measured AnnData (:func:`stentrans.read`, usually after
        :func:`stentrans.pp.qc`).
    method
        Registry name (:data:`stentrans.models.registry.METHODS`); default
        :data:`~stentrans.models.registry.DEFAULT_METHOD` (``"robust"``, as
        every entry point). ``"stentrans"`` is the paper's network, pretrained
        on the pairs ``(D(G), G)`` of all (selected) genes.
    genes, layer
        Genes to fit on (default all) and the layer to read (default X).
    seed, device, progress
        Passed to :meth:`~stentrans.models.base.Enhancer.fit`.
    checkpoint, resume
        The paper's network only: checkpoint written during training, and
        whether to continue from it when it exists.
    **settings
        The method's settings, e.g. ``epochs``, ``depth``, ``batch_size``
        for stEnTrans (``ModelConfig`` / ``TrainConfig`` fields), ``net``
        for the robust method (``RobustConfig`` fields).

    Returns
    -------
    :class:`~stentrans.models.base.Fitted`, accepted by :func:`stentrans.tl.enhance`.

    Raises
    ------
    InputError
        Bad data, e.g. too few spots for the robust method's
        self-supervision; it names the input file when ``adata`` knows it
        (``uns["stentrans"]["source"]``, set by :func:`stentrans.read`).
    """
    from .._errors import naming_file
    from ..grid import source_of, to_grid

    name = registry.DEFAULT_METHOD if method is None else method
    registry.get(name)  # an unknown name is an InputError
    if checkpoint is not None or resume:
        settings.update(checkpoint=checkpoint, resume=resume)
    gd = to_grid(adata, genes=genes, layer=layer)
    enhancer = registry.make(name, **settings)
    # the method sees arrays only: its errors about the data name the input file
    with naming_file(source_of(adata)):
        return enhancer.fit(gd.maps, gd.mask, gd.grid.lattice, seed=seed, device=device, progress=progress)
