"""Sluice: Databricks Jobs and Workflows as open, self-hosted Python software."""

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext sluice`` in Jupyter: ``dbutils``, ``display`` and widgets (see ``sluice.ipython``)."""
    from sluice.ipython import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext sluice``."""
    from sluice.ipython import unload

    unload(ipython)
