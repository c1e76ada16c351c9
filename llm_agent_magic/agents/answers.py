"""Stored answers: a request asked again unchanged is answered from the store, not by the model.

Restart & Run All of a notebook runs every ``%%agent`` cell again. A cell whose request is the same as one
already answered (same text, options, notebook folder, and attached files with the same content) shows that
run's answer and generated cells again; its ``%%sandbox`` cells below re-run themselves in the sandbox, so the
notebook reproduces without the model. ``request_key`` says what "the same" means; it is kept in the run's
``RunStarted`` event.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..run_requests import RunRequest
from ..sandbox.inside.confined import open_confined
from ..tools.files import workspace_name

CHUNK = 2**20


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (read in chunks: files can be large), read as attachments are: no link at its
    name followed, a regular file with one name only (a FIFO must not hang the run), else ``UnsafePath``."""
    digest = hashlib.sha256()
    src = Path(os.path.abspath(Path(path).expanduser()))
    with open_confined(os.path.realpath(src.parent), src.name) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def request_key(request: RunRequest, model: str) -> str:
    """A digest of what decides the answer: the text, the options, the model (``model``: the session's, unless
    the request names one), the notebook's folder, and each attached file's path (as the sandbox sees it) and
    content. Empty for a request that is never answered from the store (no notebook folder: a panel or API
    request; a dry run)."""
    if not request.folder or request.dry_run:  # a dry run answers nothing a later run could show again
        return ""
    try:
        files = [[workspace_name(path, "", request.folder), file_digest(path)] for path in request.files]
    except OSError:  # unreadable or refused (UnsafePath): the run says why; such a request is never answered again
        return ""
    spec = {
        "request": request.request,
        "mode": request.resolved_mode,
        "model": request.model or model,
        "folder": request.folder,
        "files": files,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
