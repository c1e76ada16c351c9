"""Nothing the sandbox writes may change how its next kernel starts: startup files, config files, .pth files,
sitecustomize, shadowing modules and rc files planted by one kernel are ignored by the kernels after it, which
start with the audit hook and seccomp in place (issue 9, item 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import SandboxKernel

pytestmark = pytest.mark.slow

# Each planted file leaves a mark in builtins when it runs, and tries to switch the audit hook off for good.
PLANT = r"""
import os, site
mark = "import builtins, sys; builtins.PLANTED = getattr(builtins, 'PLANTED', []) + [{name!r}]; sys.addaudithook = lambda h: None\n"
ipython = os.environ.get("IPYTHONDIR") or os.path.expanduser("~/.ipython")
jupyter = os.environ.get("JUPYTER_CONFIG_DIR") or os.path.expanduser("~/.jupyter")
user_site = site.getusersitepackages()
files = {
    "ipython startup": (ipython + "/profile_default/startup/00-planted.py", "{mark}"),
    "home ipython startup": (os.path.expanduser("~/.ipython/profile_default/startup/00-planted.py"), "{mark}"),
    "ipython config": (ipython + "/profile_default/ipython_kernel_config.py", "c.InteractiveShellApp.exec_lines = [{mark!r}]\n"),
    "jupyter config": (jupyter + "/ipython_kernel_config.py", "c.InteractiveShellApp.exec_lines = [{mark!r}]\n"),
    "user site .pth": (user_site + "/planted.pth", "{mark}"),
    "usercustomize": (user_site + "/usercustomize.py", "{mark}"),
    "workspace sitecustomize": ("sitecustomize.py", "{mark}"),
    "workspace usercustomize": ("usercustomize.py", "{mark}"),
    "workspace numpy": ("numpy.py", "{mark}"),
    "workspace matplotlibrc": ("matplotlibrc", "figure.dpi: 17\n"),
    "mplconfig matplotlibrc": (os.path.join(os.environ.get("MPLCONFIGDIR", "."), "matplotlibrc"), "figure.dpi: 17\n"),
}
written = []
for name, (path, text) in files.items():
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text.format(mark=mark.format(name=name)))
        written.append(name)
    except OSError:
        pass
print(written)
"""
CHECK = r"""
import builtins, os
print("planted:", getattr(builtins, "PLANTED", []))
try:
    os.system("true")
    print("hook: off")
except PermissionError as exc:
    print("hook: on" if "llm-agent sandbox policy" in str(exc) else f"hook: {exc}")
import numpy, matplotlib
print("numpy:", "site-packages" in numpy.__file__)
print("dpi:", matplotlib.rcParams["figure.dpi"])
"""


def test_files_planted_by_one_kernel_do_not_run_in_the_next(
    level: str, paths: PathsConfig, config_for: Callable[..., SandboxConfig]
) -> None:
    config = config_for(level, preload_modules=[])
    with SandboxKernel(f"plant-{level}", config=config, paths=paths) as sk:
        r = sk.execute(PLANT)
        assert r.status == "ok" and "workspace sitecustomize" in r.stdout, r.text_for_model()
        died = sk.execute("import os\nos._exit(1)")
        assert died.status == "died" and sk.restarts == 1, died.text_for_model()
        restarted = sk.execute(CHECK)
    # A new SandboxKernel of the session (a fresh process, `%agent reset`) launches the same way.
    with SandboxKernel(f"plant-{level}", config=config, paths=paths) as sk:
        fresh = sk.execute(CHECK)
    for r in (restarted, fresh):
        assert r.stdout == "planted: []\nhook: on\nnumpy: True\ndpi: 100.0\n", r.text_for_model()
