"""What user code sees inside a task process (and in development, outside a job).

``from sluice.runtime import dbutils`` works everywhere: in a task process started by Sluice it reads the
attempt's context file (``SLUICE_TASK_CONTEXT``, see ``docs/protocol.md``); outside a job it behaves like
``databricks-sdk``'s local ``dbutils``. Importing this package costs nothing: submodules are loaded on use
and import only the standard library.
"""
