"""Uploads into a session's workspace: limits and hostile names refused, planted links never followed."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from conftest import CSV, body, sid

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.sandbox.paths import SessionPaths

SESSION = "/home/me/nb/upload.ipynb"


def workspace(data_root):
    return SessionPaths.for_session(SESSION, PathsConfig(data_root=str(data_root))).workspace


def multipart(name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "llmagentboundary"
    payload = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return payload, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def test_raw_and_multipart_uploads_land_in_the_workspace(api, data_root):
    raw = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files?name=sales.csv", method="POST", body=CSV)
    assert raw.code == 201
    payload, headers = multipart("données été.csv", b"a,b\n1,2\n")
    form = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files", method="POST", body=payload, headers=headers)
    assert form.code == 201 and body(form)["files"] == [{"name": "données été.csv", "bytes": 8}]
    assert (workspace(data_root) / "sales.csv").read_bytes() == CSV
    assert (workspace(data_root) / "données été.csv").read_bytes() == b"a,b\n1,2\n"
    listed = body(await api("/llm-agent/api/sessions"))["sessions"]
    assert [s["id"] for s in listed] == [SESSION]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../escape.csv", "holds a folder"),
        ("/etc/passwd", "absolute path"),
        ("sub/dir.csv", "holds a folder"),
        ("..", "starts with a dot"),
        (".bashrc", "starts with a dot"),
        ("bell\x07.csv", "control"),
        ("evil\u202ecsv.exe", "invisible"),
        ("C:\\x.csv", "absolute path"),
        ("x" * 300, "longer than"),
    ],
)
async def test_hostile_names_are_refused(api, data_root, name, says):
    response = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files?name={quote(name, safe='')}", method="POST", body=b"x")
    assert response.code == 400 and says in body(response)["message"], body(response)
    if "\x07" not in name:  # tornado itself refuses control characters in a multipart header
        payload, headers = multipart(name, b"x")
        response = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files", method="POST", body=payload, headers=headers)
        assert response.code == 400 and says in body(response)["message"], body(response)
    assert not (data_root / "escape.csv").exists() and not workspace(data_root).exists()


async def test_a_raw_upload_needs_a_name(api):
    response = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files", method="POST", body=b"x")
    assert response.code == 400 and "?name=" in body(response)["message"]


async def test_a_file_over_the_limit_gets_413_with_the_limit(api, data_root):
    big = b"x" * (11 * 1024)  # the test server's limit is 0.01 MB
    response = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files?name=big.csv", method="POST", body=big)
    assert response.code == 413 and "0.01 MB" in body(response)["message"] and "max_upload_mb" in body(response)["message"]
    assert not (workspace(data_root) / "big.csv").exists()


async def test_a_link_planted_in_the_workspace_is_replaced_not_followed(api, data_root, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    folder = workspace(data_root)
    folder.mkdir(parents=True)
    os.symlink(outside, folder / "sales.csv")
    response = await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files?name=sales.csv", method="POST", body=CSV)
    assert response.code == 201
    assert outside.read_text() == "keep me"
    assert not (folder / "sales.csv").is_symlink() and (folder / "sales.csv").read_bytes() == CSV
