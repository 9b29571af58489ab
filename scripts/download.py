"""Rule download: fetch a sample's URLs (sha256-checked) into its folder."""

from _common import run


def main(snakemake, log):
    from stentrans.datasets import fetch

    p = snakemake.params
    fetch(p.locations, snakemake.output[0], p.sha256, retries=p.retries, backoff=p.backoff)


run(snakemake, main)  # noqa: F821
