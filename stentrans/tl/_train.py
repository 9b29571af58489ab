"""Fitting any registered method on an AnnData's genes (``tl.train``)."""

from __future__ import annotations

from ..models import registry

#: names the ``variant`` keyword accepted before the method registry, and their methods
VARIANT_ALIASES = {"paper": registry.PAPER_METHOD}


def method_name(method: str | None = None, variant: str | None = None) -> str:
    """The registry name of ``method`` (or of the older ``variant`` keyword; ``"paper"`` is stEnTrans).

    Neither given: :data:`stentrans.models.registry.DEFAULT_METHOD`.
    """
    if method is not None and variant is not None and VARIANT_ALIASES.get(variant, variant) != VARIANT_ALIASES.get(method, method):
        from .._errors import InputError

        raise InputError(None, "variant", f"{variant!r} contradicts method={method!r}; give only method")
    name = method if method is not None else variant
    name = registry.DEFAULT_METHOD if name is None else VARIANT_ALIASES.get(name, name)
    registry.get(name)  # an unknown name is an InputError
    return name


def train(
    adata,
    method: str | None = None,
    *,
    genes=None,
    layer: str | None = None,
    seed: int = 0,
    device="auto",
    checkpoint=None,
    resume: bool = False,
    progress: bool = True,
    variant: str | None = None,
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
    variant
        Older name of ``method`` (``"paper"`` is ``"stentrans"``).
    **settings
        The method's settings, e.g. ``epochs``, ``depth``, ``batch_size``
        for stEnTrans (``ModelConfig`` / ``TrainConfig`` fields), ``net``
        for the robust variant (``RobustConfig`` fields).

    Returns
    -------
    :class:`~stentrans.models.base.Fitted`, accepted by :func:`stentrans.tl.enhance`.

    Raises
    ------
    InputError
        Bad data, e.g. too few spots for the robust variant's
        self-supervision; it names the input file when ``adata`` knows it
        (``uns["stentrans"]["source"]``, set by :func:`stentrans.read`).
    """
    from .._errors import naming_file
    from ..grid import source_of, to_grid

    name = method_name(method, variant)
    if checkpoint is not None or resume:
        settings.update(checkpoint=checkpoint, resume=resume)
    gd = to_grid(adata, genes=genes, layer=layer)
    enhancer = registry.make(name, **settings)
    # the method sees arrays only: its errors about the data name the input file
    with naming_file(source_of(adata)):
        return enhancer.fit(gd.maps, gd.mask, gd.grid.lattice, seed=seed, device=device, progress=progress)
