"""Who is acting: the local user for the CLI, the token's user for the server.

Sluice has no accounts. The CLI acts as the operating-system user running it; ``sluice serve`` acts as the
user its caller's token was created for (``sluice tokens create --user``, by default the local user of
whoever created it). The name is what Databricks shows as ``creator_user_name`` and what
``current_user.me()`` answers; it grants nothing (every valid token may do everything).
"""

from __future__ import annotations

import getpass

#: The name used when the operating system has none for the current user (some containers).
FALLBACK_USER = "user"


def local_user() -> str:
    """The operating-system login name of this process's user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry
        return FALLBACK_USER
