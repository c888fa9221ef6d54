"""Sluice: Databricks Jobs and Workflows as open, self-hosted Python software."""

__version__ = "0.1.0"
