"""What runs inside the sandbox's Python: files that import only the standard library.

Why only the standard library: the sandbox kernel may run another interpreter than this package's
(a kernel spec's Python, or an environment with ipykernel and the analysis libraries but without
llm-agent-magic), and even where the package is installed its folder need not be importable inside
the sandbox. So ``entrypoint.py`` is started by path (``python -I .../inside/entrypoint.py``) and
loads its siblings by path under names of its own (``_llm_agent_sandbox_<name>``), and the isolation
checks run ``landlock.py`` and ``seccomp.py`` as scripts. Each file imports only the standard library
at module level (pandas, numpy, pyarrow and IPython when a value needs them), and its siblings either
as this package (``if __package__:``, when the parent imports them) or by the names the entry point
gave them. For the same reason their few exception classes are defined here, not in
``llm_agent_magic/exceptions.py``, and their atomic writes use ``atomic.py`` here, not
``llm_agent_magic/atomic.py``.

The parent imports these modules normally, from here (``from llm_agent_magic.sandbox.inside import
snapshots``). This folder lies inside the sandbox package, whose folder ``launch_plan.py`` makes
readable inside the sandbox (bubblewrap's mounts and Landlock's rules, ``mounts.py``).

  ``entrypoint.py``  the kernel process's entry point: limits, seccomp, Landlock, then the kernel and the hook
  ``landlock.py``    Landlock rules (kernel-enforced reads, writes, TCP, scopes); a self-test as a script
  ``seccomp.py``     no new processes, no UDP/raw sockets; a self-test as a script
  ``audit_hook.py``  the audit hook (a guide with friendly messages, not the wall)
  ``summaries.py``   variable summaries (+ their parent-side dataclass)
  ``snapshots.py``   parquet/npy/JSON/PNG snapshots and their writer
  ``catalog.py``     the snapshot catalog, checked as hostile input
  ``restore.py``     snapshots read back (``load``, ``restore_into``) within limits
  ``confined.py``    reading/writing files in folders the sandbox can change
  ``atomic.py``      temp file beside the target, then rename (this side's copy of ``llm_agent_magic/atomic.py``)
  ``remote.py``      a gateway's kernel set up as the sandbox (these files arrive as text over the kernel
                     protocol, ``entrypoint._load`` builds modules from them); its end of file transfers
"""
