"""The orchestrator: creating runs and driving them to their result."""
