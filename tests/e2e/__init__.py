"""End-to-end tests: the real ``sluice`` CLI run as a subprocess, as a user runs it."""
