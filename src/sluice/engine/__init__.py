"""The orchestrator: creating runs and driving them to their result."""


def seconds(n: int) -> str:
    """``"1 second"``, ``"30 seconds"``: a duration in messages."""
    return f"{n} second" if n == 1 else f"{n} seconds"
