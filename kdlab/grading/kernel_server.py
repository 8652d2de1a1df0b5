"""Warm sandboxed kernels: a fork server that imports torch, kdlab and ipykernel once, then
forks one fresh kernel per request, confined like a cold one.

Starting a kernel and importing torch cost about 3 CPU seconds, more than grading a whole
a2 submission; a fork costs milliseconds and shares the imported pages. The server never
runs student code: each request forks a keeper, which forks the kernel; the kernel applies
the sandbox's steps (:func:`kdlab.grading.sandbox.confine`: namespaces, limits, its own
user id) and becomes an ``ipykernel``, used for one notebook only. Jupyter starts
``sandbox.py relay`` as the kernel's process (a kernelspec from
:func:`kdlab.grading.sandbox.kernel_spec` with ``server``); the relay sends the request,
passes Jupyter's signals on to the kernel's process group and exits with the kernel. The
keeper kills the kernel's process group when the relay dies.

Run as a script, by the grading process: ``python kernel_server.py SOCKET MODULE...``; it
prints one JSON line when it listens (its private memory, for the memory limit) and ends
when its standard input closes. It loads ``sandbox.py`` by path, so that the package's
other modules (nbgrader, nbconvert) stay out of the kernels.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import resource
import select
import signal
import socket
import sys
import threading
from pathlib import Path

__all__ = ["private_memory_mb", "serve"]


def private_memory_mb() -> float:
    """This process's private memory in MB as ``RLIMIT_DATA`` counts it (``VmData``)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmData:\s+(\d+)", status, re.M).group(1)) / 1024


def _sandbox():
    path = Path(__file__).resolve().with_name("sandbox.py")
    spec = importlib.util.spec_from_file_location("kdlab_grading_sandbox", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _kernel(request: dict, confine) -> None:
    """In the forked child: confine this process, then run the kernel in it (never returns)."""
    try:
        os.setsid()  # its own process group: the relay's signals and the kill reach all of it
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        env, command = confine(request["argv"], request["env"])
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        import tempfile

        tempfile.tempdir = None  # found again from TMPDIR, the sandbox's own
        from ipykernel.kernelapp import IPKernelApp

        # command: python -m ipykernel_launcher ARGS, as a cold kernel would run it
        sys.argv = ["ipykernel_launcher", *command[3:]]
        IPKernelApp.launch_instance(argv=command[3:])
    finally:
        os._exit(1)


def _keep(conn: socket.socket, confine) -> None:
    """In a keeper process: fork the kernel of the request on ``conn``, report its pid and
    its exit status; kill its process group when the relay at the other end goes away."""
    request = json.loads(conn.makefile("rb").readline())
    pid = os.fork()
    if pid == 0:
        _kernel(request, confine)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    exited = os.pidfd_open(pid)
    while True:
        ready, _, _ = select.select([conn, exited], [], [])
        if exited in ready:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(json.dumps({"status": code}).encode() + b"\n")
            except OSError:
                pass
            return
        if not conn.recv(64):  # the relay died: nothing may outlive it
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def serve(path: str, preload: list[str]) -> None:
    """Import ``preload``, listen on the Unix socket ``path`` and fork a keeper per request."""
    sandbox = _sandbox()
    for name in preload:
        importlib.import_module(name)
    import ipykernel.ipkernel  # noqa: F401 (the kernel's own imports, done once)
    import ipykernel.kernelapp  # noqa: F401

    if threading.active_count() != 1:  # a fork keeps only the calling thread
        raise RuntimeError(f"{preload} started threads: a forked kernel would miss them")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the system
    print(json.dumps({"private_mb": private_memory_mb()}), flush=True)
    while True:
        ready, _, _ = select.select([server, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 64):
            return  # the grading process is gone
        if server in ready:
            conn, _ = server.accept()
            if os.fork() == 0:
                server.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    _keep(conn, sandbox.confine)
                finally:
                    os._exit(0)
            conn.close()


if __name__ == "__main__":
    sys.path.pop(0)  # this file's folder: its nbgrader.py would hide the real nbgrader
    serve(sys.argv[1], sys.argv[2:])
