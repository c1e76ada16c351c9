"""SandboxKernel through a real Jupyter Kernel Gateway: files, snapshots and restarts over the kernel protocol."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from gateway_helpers import PLANTED, Gateway

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import SandboxKernel, load_variable
from llm_agent_magic.sandbox.inside.snapshots import read_catalog


def gateway_kernel(session: str, data_root: Path, gateway: Gateway, **settings: object) -> SandboxKernel:
    config = SandboxConfig(gateway_url=gateway.url, execution_timeout=60, **settings)
    return SandboxKernel(session, config=config, paths=PathsConfig(data_root=str(data_root)))


def test_files_code_results_and_snapshots_cross_the_kernel_protocol(tmp_path: Path, gateway_env: Gateway) -> None:
    data_root = tmp_path / "data"
    with gateway_kernel("files", data_root, gateway_env) as sk:
        (sk.paths.workspace / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
        r = sk.execute(
            "import os, pandas as pd\n"
            "sales = pd.read_csv('sales.csv')\n"
            "print(os.getcwd())\n"
            "print(sales['price'].mean())\n"
            "open('summary.txt', 'w').write('mean 20')\n"
            "planted = [k for k in os.environ if k in " + repr(list(PLANTED)) + "]\n"
            "print(planted)"
        )
        assert r.status == "ok", r.text_for_model()
        cwd, mean, planted = r.stdout.splitlines()
        # The kernel runs in the gateway's folder: this side's workspace is not its disk.
        assert Path(cwd).is_relative_to(gateway_env.home) and not Path(cwd).is_relative_to(tmp_path)
        assert mean == "20.0" and planted == "[]"  # the gateway's credentials were removed from the kernel
        assert r.metadata["isolation"] == "gateway" and r.metadata["kernel_enforced"] is False
        assert "gateway" in r.metadata["isolation_layers"]
        # The results file and the snapshot were fetched back into the session's folders here.
        assert (sk.paths.workspace / "summary.txt").read_text() == "mean 20"
        assert read_catalog(sk.paths.snapshots)["variables"]["sales"]["kind"] == "dataframe"
        pulled = sk.load("sales")
        pd.testing.assert_frame_equal(pulled, pd.DataFrame({"region": ["north", "south"], "price": [10, 30]}))
        # A file attached later reaches the kernel before the next execution.
        (sk.paths.workspace / "more.csv").write_text("a\n1\n2\n3\n")
        assert sk.execute("print(len(pd.read_csv('more.csv')))").stdout == "3\n"
        sk.push("pushed_df", pd.DataFrame({"x": [1, 2]}))
        assert sk.execute("print(pushed_df['x'].sum())").stdout == "3\n"
        remote_root = Path(sk.remote_info["folders"]["root"])
        assert (remote_root / "workspace" / "more.csv").is_file()
    # Shut down: its folder on the gateway's side is gone, its snapshots here remain.
    assert not remote_root.exists()
    assert load_variable("files", "sales", PathsConfig(data_root=str(data_root)))["price"].sum() == 40


def test_a_kernel_deleted_through_the_gateway_is_restarted_and_its_variables_restored(
    tmp_path: Path, gateway_env: Gateway
) -> None:
    with gateway_kernel("restart", tmp_path / "data", gateway_env) as sk:
        (sk.paths.workspace / "nums.csv").write_text("n\n1\n2\n")
        r = sk.execute("import numpy as np, pandas as pd\nx = 41\narr = np.arange(5)\ndf = pd.read_csv('nums.csv')")
        assert r.status == "ok", r.text_for_model()
        kernel_id = json.loads(sk.paths.state_file.read_text())["kernel_id"]
        assert kernel_id in gateway_env.kernel_ids()
        assert gateway_env.request("DELETE", f"/api/kernels/{kernel_id}")[0] == 204
        r = sk.execute("print(x + 1, arr.sum(), int(df['n'].sum()), len(open('nums.csv').read()))")
        assert r.status == "ok", r.text_for_model()
        assert r.stdout == "42 10 3 6\n"  # the workspace came back too
        assert sorted(r.restored) == ["arr", "df", "x"]
        assert "restarted" in r.message
        new_id = json.loads(sk.paths.state_file.read_text())["kernel_id"]
        assert new_id != kernel_id and new_id in gateway_env.kernel_ids() and kernel_id not in gateway_env.kernel_ids()


def test_what_the_gateways_kernel_sends_back_is_checked(tmp_path: Path, gateway_env: Gateway) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the sandbox")
    with gateway_kernel("hostile", tmp_path / "data", gateway_env, transfer_max_mb=0.01) as sk:
        r = sk.execute(
            "import json, os\n"
            "os.symlink('/etc/hostname', 'link.txt')\n"
            "open('big.bin', 'wb').write(b'x' * 20000)\n"
            "open('ok.txt', 'w').write('fine')\n"
            "value = 5\n"
        )
        assert r.status == "ok", r.text_for_model()
        ws = sk.paths.workspace
        assert (ws / "ok.txt").read_text() == "fine"
        assert not (ws / "link.txt").exists() and not (ws / "link.txt").is_symlink()  # a link is never fetched
        assert not (ws / "big.bin").exists()
        assert "big.bin was not fetched from the sandbox: it is 20,000 bytes, more than the 10,485 bytes" in r.message
        assert "link.txt was not fetched from the sandbox: it is a symbolic link" in r.message
        # A tampered catalog: an entry named like a builtin, one whose file leaves the folder. The function runs
        # in a cell of its own, which changes no variable, so the kernel's writer does not rewrite the catalog.
        r = sk.execute(
            "def tamper():\n"
            "    snap = os.path.join(os.path.dirname(os.getcwd()), 'snapshots')\n"
            "    cat = json.load(open(os.path.join(snap, 'catalog.json')))\n"
            "    cat['variables']['open'] = dict(cat['variables']['value'], name='open', file='open.value.json')\n"
            "    cat['variables']['evil'] = dict(cat['variables']['value'], name='evil', file='../../secret.txt')\n"
            "    open(os.path.join(snap, 'open.value.json'), 'w').write('1')\n"
            "    json.dump(cat, open(os.path.join(snap, 'catalog.json'), 'w'))\n"
        )
        assert r.status == "ok", r.text_for_model()
        assert sk.execute("tamper()").status == "ok"
        sk.flush_snapshots()
        catalog = read_catalog(sk.paths.snapshots)
        assert "shadows a Python builtin" in catalog["problems"]["open"]
        assert "not inside the snapshots folder" in catalog["problems"]["evil"]
        assert not (sk.paths.snapshots / "open.value.json").exists()
        assert sorted(os.listdir(sk.paths.snapshots)) == ["catalog.json", "value.value.json"]
        assert sk.load("value") == 5


@pytest.mark.parametrize("setting", ["gateway_url"])
def test_gateway_settings_are_checked(setting: str) -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError, match="must start with http"):
        SandboxConfig(**{setting: "gateway:8888"})


def test_a_timeout_interrupts_the_gateways_kernel_and_keeps_its_variables(tmp_path: Path, gateway_env: Gateway) -> None:
    with gateway_kernel("timeout", tmp_path / "data", gateway_env) as sk:
        assert sk.execute("kept = 7").status == "ok"
        r = sk.execute("import time\nfor _ in range(600):\n    time.sleep(0.1)", timeout=1.5)
        assert r.status == "timeout" and "interrupted" in r.message, r.text_for_model()
        assert sk.restarts == 0  # the interrupt reached the kernel: no restart was needed
        assert sk.execute("print(kept)").stdout == "7\n"


def test_the_fetch_budget_counts_the_bytes_received_not_the_sizes_the_kernel_claims(tmp_path: Path, gateway_env: Gateway) -> None:
    """Code in the kernel makes its listing and its reads claim 0 bytes for every file: the bytes that arrive
    count, and the fetch stops where they reach the budget."""
    part = 400_000
    with gateway_kernel("liar", tmp_path / "data", gateway_env, workspace_quota_mb=1, transfer_max_mb=1) as sk:
        r = sk.execute(
            "import sys\n"
            "helper = sys.modules['_llm_agent_sandbox']\n"
            "real_listing = helper.listing\n"
            "def lying_listing(area):\n"
            "    answer = real_listing(area)\n"
            "    answer.data = {'files': [dict(f, size=0) for f in answer.data['files']]}\n"
            "    return answer\n"
            "helper.listing = lying_listing\n"
            "real_get = helper.get\n"
            "def lying_get(*args):\n"
            "    answer = real_get(*args)\n"
            "    answer.data['size'] = 0\n"
            "    return answer\n"
            "helper.get = lying_get\n"
            f"for i in range(6):\n"
            f"    open(f'part{{i}}.bin', 'wb').write(bytes([65 + i]) * {part})\n"
        )
        assert r.status == "ok", r.text_for_model()
        fetched = sorted(p.name for p in sk.paths.workspace.iterdir())
        budget = 2**20
        assert sum((sk.paths.workspace / name).stat().st_size for name in fetched) <= budget
        assert len(fetched) == budget // part == 2  # whole files only: the third ran into the budget
        for name in fetched:
            assert (sk.paths.workspace / name).read_bytes() == bytes([65 + int(name[4])]) * part
        assert (
            f"4 file(s) were not fetched from the sandbox (part"
            f"{', part'.join(str(i) + '.bin' for i in range(6) if f'part{i}.bin' not in fetched)}): "
            f"the files written in one execution pass {budget:,} bytes (SandboxConfig.workspace_quota_mb); "
            f"{budget:,} bytes were received"
        ) in r.message
