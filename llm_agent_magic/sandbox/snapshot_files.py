"""A session's snapshots as this process sees them: one read back within the limits, all of them forgotten.

The sandbox wrote them (``inside/snapshots.py``), so each is checked as it is read (``inside/catalog.py``,
``inside/restore.py``); no kernel is needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from llm_agent_magic.config import SandboxConfig
from llm_agent_magic.exceptions import SnapshotNotFound

from .inside import snapshots
from .paths import SessionPaths


def load_snapshot(paths: SessionPaths, name: str, config: SandboxConfig | None = None, *, set_aside: bool = True) -> Any:
    """Read one snapshot of a session, within ``config``'s snapshot limits.

    ``SnapshotNotFound`` says which variables exist, and why this one was not saved or was refused
    (a catalog entry or file the sandbox tampered with, or one beyond the limits). ``set_aside=False``:
    an unusable catalog stays where it is (``read_catalog``).
    """
    catalog = snapshots.read_catalog(paths.snapshots, set_aside=set_aside)
    known = sorted(catalog["variables"])
    entry = catalog["variables"].get(name)
    if entry is None:
        reason = catalog["not_persisted"].get(name, {}).get("reason", "")
        refused = catalog["problems"].get(name) or catalog["problems"].get(snapshots.CATALOG, "")
        raise SnapshotNotFound(name, paths.session_id, known, reason, refused)
    max_rows, max_bytes = snapshot_limits(config or SandboxConfig())
    try:
        return snapshots.load_entry(entry, paths.snapshots, max_rows=max_rows, max_bytes=max_bytes)
    except FileNotFoundError:
        raise SnapshotNotFound(name, paths.session_id, known, refused="its file is missing") from None
    except Exception as exc:  # noqa: BLE001 - refused (UnsafePath), or a file pandas, numpy or json cannot read
        why = getattr(exc, "reason", "") or f"it could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        raise SnapshotNotFound(name, paths.session_id, known, refused=why) from None


def snapshot_limits(config: SandboxConfig) -> tuple[int, int]:
    """Rows and bytes one snapshot may take when loaded back."""
    return int(config.snapshot_max_rows), int(config.snapshot_max_mb * 2**20)


def forget_snapshots(folder: Path) -> None:
    """Delete every snapshot in ``folder``; the folder itself stays (it may be bind-mounted into a running sandbox)."""
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
