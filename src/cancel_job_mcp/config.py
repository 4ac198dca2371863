"""Where the server keeps its state, and the settings read from the environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "cancel-job-mcp"
HOME_ENV = "CANCEL_JOB_MCP_HOME"


def user_data_dir() -> Path:
    """The platform's per-user data directory for this application."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / APP_NAME
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP_NAME


def data_home() -> Path:
    """`$CANCEL_JOB_MCP_HOME`, else the user data directory."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else user_data_dir()
