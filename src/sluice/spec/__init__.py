"""Job definitions: Jobs API models (``jobs``), loading files and bundles (``bundle``), checks (``validate``).

Import the submodule you need; this package imports nothing so ``sluice.spec.jobs`` stays cheap to load.
"""
