"""Customer care for Musaed: the agents' HTTP API and page (server.py) and command line (cli.py).

The logic lives in musaed/help_desk.py and musaed/conversations.py; this package only loads the model, checks
agents' tokens, and speaks HTTP or argparse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 5080


def default_model() -> Path:
    """MUSAED_MODEL, else models/musaed.tar.gz here or beside this package."""
    if os.environ.get("MUSAED_MODEL"):
        return Path(os.environ["MUSAED_MODEL"])
    here = Path("models") / "musaed.tar.gz"
    return here if here.exists() else ROOT / "models" / "musaed.tar.gz"


def default_tracker_db() -> Union[Path, str]:
    """MUSAED_TRACKER_DB (a SQLite file, or the cluster's postgresql:// URL), else
    var/trackers.db (where `make run` keeps conversations)."""
    configured = os.environ.get("MUSAED_TRACKER_DB")
    if configured:
        from musaed.conversations import is_url

        return configured if is_url(configured) else Path(configured)
    here = Path("var") / "trackers.db"
    return here if here.exists() else ROOT / "var" / "trackers.db"
