"""Orchestration: the sequences the command line and the workflow both run, given explicit paths.

Above :mod:`stentrans.tl` (which computes) and :mod:`stentrans.pl` /
:mod:`stentrans.report` (which draw and tabulate): each function here takes
the data and the output's path, checks that the output can be written before
any work, runs one whole step and writes every file atomically.
``stentrans enhance`` / ``evaluate`` / ``patterns`` and the workflow's
scripts of the same names call them, so the two cannot drift apart.

* :func:`enhance_to`: fit a method and write the enhanced ``.h5ad`` (one
  gene chunk at a time) or SpatialData ``.zarr``;
* :func:`evaluate_to`: per-gene PCC under the protocols, tables, boxplots
  and gene panels;
* :func:`downstream_to`: what clustering and spatially variable genes see
  on the default and other outputs, against the truth at every position
  (issue 28; the workflow's ``downstream`` rule);
* :func:`patterns_to`: paper Fig. 4's analysis and its control, tables,
  ``summary.json`` and figures;
* :func:`check_output`: the output check the three start with, for other
  commands that write files;
* :func:`setup_logging`: the log of a command or a workflow job.
"""

from .._utils import check_output, setup_logging
from ._downstream import downstream_to
from ._enhance import OUTPUT_SUFFIXES, enhance_to
from ._evaluate import evaluate_to
from ._patterns import patterns_to

__all__ = ["enhance_to", "evaluate_to", "downstream_to", "patterns_to", "check_output", "setup_logging", "OUTPUT_SUFFIXES"]
