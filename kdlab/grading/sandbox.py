"""A limited Jupyter kernel for grading untrusted notebooks, and a probe of what Linux permits.

nbgrader starts kernels from a kernelspec; :func:`kernel_spec` writes one whose ``argv``
runs this file as a launcher in front of ``ipykernel``. The launcher, started as root by
nbgrader, then

1. enters a new network namespace (``unshare(CLONE_NEWNET)``): no interface but a loopback
   that is down, so no connection leaves the kernel, not even to ``localhost``;
2. enters a new mount namespace and mounts an empty read-only ``tmpfs`` over each hidden
   folder (the course root: gradebook, source notebooks, every submission);
3. sets resource limits: private memory (``RLIMIT_DATA``), CPU seconds, file size,
   processes, no core file;
4. switches to an unprivileged user id of its own (one per grading slot, so two kernels
   running side by side cannot read or trace each other), so that files of root alone,
   such as the gradebook (mode 0600), stay closed, and nothing of the system is writable;
   where the Python interpreter lies in a folder that user may not enter (a pyenv under
   ``/root``), that folder is replaced, in the mount namespace, by an empty one holding
   only the interpreter;
5. replaces itself with the kernel (``exec``), which talks to nbgrader through Unix sockets
   in a folder of the grading scratch (ZeroMQ ``ipc`` transport: TCP would need the network
   that step 1 removed).

The same steps (:func:`confine`) run in a kernel forked by the warm kernel server
(:mod:`kdlab.grading.kernel_server`), which has imported torch once; the kernelspec then
runs this file as a relay (``relay``) that stands in for that kernel towards Jupyter.

Each step that the machine does not permit is skipped; :func:`probe` finds out beforehand,
and :meth:`Capabilities.warnings` says what is then not enforced. The launcher runs as a
plain script (``python -I sandbox.py``) so that it imports neither kdlab nor torch: it
must not import anything from the package.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Capabilities", "Limits", "confine", "kernel_spec", "probe"]

# Grading slot k runs its kernels as user id FIRST_UID + k (no name needed).
FIRST_UID = 61000

KERNEL_NAME = "kdlab-sandbox"
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 1, 2, 4, 32, 4096
MS_REC, MS_PRIVATE = 0x4000, 1 << 18


@dataclass(frozen=True)
class Limits:
    """What one submission may use. ``cell_seconds`` is nbgrader's per-cell timeout
    (``Execute.timeout``), ``notebook_seconds`` the wall limit on grading one submission
    (every process of the submission's kernel is killed after it, and it is also the
    kernel's CPU time limit), ``memory_mb`` the kernel's private memory (heap and private
    mappings; a kernel forked from the warm server starts with about 0.9 GB of it in use),
    ``file_mb`` the largest file it may write, ``processes`` the most processes and
    threads of the sandbox user."""

    cell_seconds: int = 600
    notebook_seconds: int = 1800
    memory_mb: int = 6144
    file_mb: int = 1024
    processes: int = 512

    def __post_init__(self) -> None:
        for name in ("cell_seconds", "notebook_seconds", "memory_mb", "file_mb", "processes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.notebook_seconds < self.cell_seconds:
            raise ValueError(
                f"Limits.notebook_seconds ({self.notebook_seconds}) must be at least "
                f"cell_seconds ({self.cell_seconds}): a notebook holds at least one cell"
            )


@dataclass(frozen=True)
class Capabilities:
    """What this machine lets the launcher enforce (see :func:`probe`)."""

    uid: int | None  # the first unprivileged user id for kernels, or None (same user)
    network_namespace: bool
    mount_namespace: bool
    reason: str = ""  # why a namespace failed, from the probe
    reason_user: str = ""  # why no user switch

    def warnings(self) -> list[str]:
        """One line for each protection that is missing here."""
        out = []
        if self.uid is None:
            out.append(
                f"student code runs as the grading user ({self.reason_user}): every file "
                "that user may read or write is open to it, except what a mount namespace "
                "hides"
            )
        if not self.network_namespace:
            out.append(f"no network namespace ({self.reason}): student code can use the network")
        if not self.mount_namespace:
            out.append(
                f"no mount namespace ({self.reason}): the course root is not hidden, only "
                "file permissions protect it"
            )
        return out

    def enforced(self) -> list[str]:
        """One line for each protection in force, for the report."""
        out = ["time: per-cell timeout, wall limit per submission, kernel CPU-time limit"]
        out.append("memory, file size, process count: resource limits of the kernel")
        out.append("other students: each submission is graded in its own scratch folder")
        if self.uid is not None:
            out.append(
                f"kernel runs as an unprivileged user id ({self.uid} + slot), one per "
                "parallel slot; the gradebook is mode 0600"
            )
        if self.network_namespace:
            out.append("no network: the kernel is in an empty network namespace")
        if self.mount_namespace:
            out.append("the course root (gradebook, sources, submissions) is hidden")
        return out


def probe(uid: int = FIRST_UID) -> Capabilities:
    """Find out, in child processes, what this machine allows: the two namespaces, then
    whether a kernel started by the launcher as user id ``uid`` can import ipykernel."""
    if not sys.platform.startswith("linux"):
        return Capabilities(None, False, False, f"not Linux ({sys.platform})", "not Linux")
    child = subprocess.run(
        [sys.executable, "-I", str(Path(__file__).resolve()), "probe"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        found = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        found = {"net": False, "mount": False, "reason": child.stderr.strip()[-200:]}
    caps = Capabilities(None, found["net"], found["mount"], found["reason"])
    if os.geteuid() != 0:
        return Capabilities(**{**caps.__dict__, "reason_user": "not started as root"})
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.chown(home, uid, uid)
        os.chmod(tmp, 0o711)
        trial = Capabilities(uid, caps.network_namespace, caps.mount_namespace)
        spec = kernel_spec(Limits(), trial, home=home, pidfile=Path(tmp) / "pid", hide=[])
        argv = spec["argv"][: spec["argv"].index("--") + 1]
        # ipykernel proves the environment readable, kdlab's source the project (a read,
        # not an import: importing kdlab loads torch, seconds on a busy machine).
        check = (
            "import importlib.util, ipykernel, os; "
            "open(importlib.util.find_spec('kdlab').origin).close(); print(os.getuid())"
        )
        result = subprocess.run(
            [*argv, sys.executable, "-c", check], capture_output=True, text=True, timeout=120
        )
    if result.returncode == 0 and result.stdout.strip() == str(uid):
        return Capabilities(**{**caps.__dict__, "uid": uid})
    why = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return Capabilities(
        **{**caps.__dict__, "reason_user": f"user id {uid} cannot start Python: {why}"}
    )


def kernel_spec(
    limits: Limits,
    caps: Capabilities,
    *,
    home: Path,
    pidfile: Path,
    hide: list[Path],
    env: dict[str, str] | None = None,
    server: Path | None = None,
) -> dict:
    """A kernelspec (``kernel.json``) that starts ``ipykernel`` through the launcher, or,
    with ``server``, has the warm kernel server listening there fork a confined kernel."""
    launcher = [sys.executable, "-I", str(Path(__file__).resolve())]
    launcher += ["launch"] if server is None else ["relay", str(server)]
    launcher += [
        "--memory-mb",
        str(limits.memory_mb),
        "--cpu-seconds",
        str(limits.notebook_seconds),
    ]
    launcher += ["--file-mb", str(limits.file_mb), "--processes", str(limits.processes)]
    launcher += ["--home", str(home), "--pidfile", str(pidfile)]
    if caps.uid is not None:
        launcher += ["--uid", str(caps.uid)]
        if caps.mount_namespace:
            launcher += ["--expose", str(Path(sys.base_prefix).resolve())]
    if caps.network_namespace:
        launcher += ["--no-network"]
    if caps.mount_namespace:
        for path in hide:
            launcher += ["--hide", str(path)]
    for key, value in (env or {}).items():
        launcher += ["--setenv", f"{key}={value}"]
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return {
        "argv": [*launcher, "--", *kernel],
        "display_name": "Python 3 (kdlab grading sandbox)",
        "language": "python",
        "metadata": {"debugger": False},
    }


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _unshare(libc: ctypes.CDLL, flags: int) -> None:
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare: {os.strerror(ctypes.get_errno())}")


def _mount(
    libc: ctypes.CDLL, source: str, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    args = [None if v is None else v.encode() for v in (source, target, fstype)]
    if libc.mount(*args, flags, None if data is None else data.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _private_mounts(libc: ctypes.CDLL) -> None:
    # Mounts made from now on stay in this namespace instead of spreading to the host.
    _mount(libc, "none", "/", None, MS_REC | MS_PRIVATE, None)


def _expose(libc: ctypes.CDLL, path: Path) -> None:
    """Make ``path`` reachable for any user: the first folder above it that others may not
    enter is covered with an empty tmpfs holding ``path`` alone, bound read-only."""
    blocked = next((p for p in reversed(path.parents) if not os.stat(p).st_mode & 0o001), None)
    if blocked is None:
        return
    fd = os.open(path, os.O_PATH)
    _mount(libc, "tmpfs", str(blocked), "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    path.mkdir(parents=True)
    _mount(libc, f"/proc/self/fd/{fd}", str(path), None, MS_BIND | MS_REC, None)
    _mount(libc, "none", str(path), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    os.close(fd)


def _probe_child() -> dict:
    libc, found = _libc(), {"net": False, "mount": False, "reason": ""}
    try:
        _unshare(libc, CLONE_NEWNET)
        found["net"] = True
    except OSError as err:
        found["reason"] = str(err)
    try:
        _unshare(libc, CLONE_NEWNS)
        _private_mounts(libc)
        with tempfile.TemporaryDirectory() as folder:
            _mount(libc, "tmpfs", folder, "tmpfs", MS_RDONLY, "size=4k,mode=0555")
            found["mount"] = libc.umount2(folder.encode(), 0) == 0
    except OSError as err:
        found["reason"] = str(err)
    return found


def confine(argv: list[str], environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Apply the limits in ``argv`` (the kernelspec's launcher options, ``--``, the kernel's
    command) to this process; the kernel's environment (from ``environ``) and command."""
    split = argv.index("--")
    options, command = argv[:split], list(argv[split + 1 :])
    opts: dict[str, list[str]] = {}
    flags = {"--no-network"}
    i = 0
    while i < len(options):
        if options[i] in flags:
            opts[options[i]] = []
            i += 1
        else:
            opts.setdefault(options[i], []).append(options[i + 1])
            i += 2
    home = Path(opts["--home"][0])
    Path(opts["--pidfile"][0]).write_text(str(os.getpid()))
    libc = _libc()
    if "--no-network" in opts:
        _unshare(libc, CLONE_NEWNET)
    if opts.get("--hide") or opts.get("--expose"):
        _unshare(libc, CLONE_NEWNS)
        _private_mounts(libc)
        for path in opts.get("--expose", []):
            _expose(libc, Path(path))
        for path in opts.get("--hide", []):
            if os.path.isdir(path):  # a path under an exposed folder is already gone
                hidden = MS_RDONLY | MS_NOSUID | MS_NODEV
                _mount(libc, "tmpfs", path, "tmpfs", hidden, "size=4k,mode=0555")
    mb = 1024 * 1024
    memory = int(opts["--memory-mb"][0]) * mb
    cpu = int(opts["--cpu-seconds"][0])
    # RLIMIT_DATA counts heap and private mappings; RLIMIT_AS would also count the 3 GB of
    # address space that importing torch reserves without using it.
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(opts["--file-mb"][0]) * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    env = dict(environ)
    for item in opts.get("--setenv", []):
        key, _, value = item.partition("=")
        env[key] = value
    env.update(HOME=str(home), IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".mpl"))
    # The connection file is root's (mode 0600): hand the kernel a copy it may read.
    if "-f" in command:
        at = command.index("-f") + 1
        copy = home / "connection.json"
        copy.write_text(Path(command[at]).read_text())
        command[at] = str(copy)
    if opts.get("--uid"):
        uid = int(opts["--uid"][0])
        if "-f" in command:
            os.chown(command[command.index("-f") + 1], uid, uid)
        processes = int(opts["--processes"][0])
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        env.update(USER=f"uid{uid}", LOGNAME=f"uid{uid}")
    return env, command


def _relay(server: str, argv: list[str]) -> int:
    """Stand in for a kernel forked by the warm kernel server at ``server`` (a Unix socket,
    :mod:`kdlab.grading.kernel_server`): ask it for a kernel confined by ``argv``, pass
    the signals that Jupyter sends this process on to the kernel, and exit when it exits.
    The server kills the kernel when this process dies, even by SIGKILL."""
    import signal
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(server)
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    conn.sendall(json.dumps(request).encode() + b"\n")
    replies = conn.makefile("rb")
    pid = json.loads(replies.readline())["pid"]
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(signum, lambda n, _: os.kill(pid, n))
    line = replies.readline()
    status = json.loads(line)["status"] if line else -9
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        print(json.dumps(_probe_child()))
    elif sys.argv[1:2] == ["launch"]:
        kernel_env, kernel = confine(sys.argv[2:], dict(os.environ))
        os.execvpe(kernel[0], kernel, kernel_env)
    elif sys.argv[1:2] == ["relay"]:
        sys.exit(_relay(sys.argv[2], sys.argv[3:]))
    else:
        sys.exit(
            "usage: sandbox.py probe | launch OPTIONS -- KERNEL COMMAND | "
            "relay SOCKET OPTIONS -- KERNEL COMMAND"
        )
