"""Customer care for Musaed: the agents' HTTP API and page (server.py) and command line (cli.py).

The logic lives in musaed/help_desk.py and musaed/conversations.py; this package only loads the model, checks
agents' tokens, and speaks HTTP or argparse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from musaed import settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 5080


def default_model() -> Path:
    """MUSAED_MODEL, else models/musaed.tar.gz here or beside this package."""
    configured = settings.MODEL.given()
    if configured:
        return Path(configured)
    here = Path("models") / "musaed.tar.gz"
    return here if here.exists() else ROOT / "models" / "musaed.tar.gz"


def default_tracker_db() -> Union[Path, str]:
    """MUSAED_TRACKER_DB (a SQLite file, or the cluster's postgresql:// URL), else
    var/trackers.db (where `make run` keeps conversations)."""
    configured = settings.TRACKER_DB.given()
    if configured:
        from musaed.conversations import is_url

        return configured if is_url(configured) else Path(configured)
    here = Path("var") / "trackers.db"
    return here if here.exists() else ROOT / "var" / "trackers.db"
