"""A long-lived grading process per worker slot: nbgrader's autograde converter run in
that process (no new nbgrader process per submission) with kernels forked from the slot's
warm kernel server (:mod:`kdlab.grading.kernel_server`: torch and kdlab imported once).

:func:`worker` gives the slot's process, started on first use; :meth:`Worker.grade` sends
it one submission's scratch course and waits, at most the wall limit and a margin, for its
answer. A process that dies or hangs is replaced, and the submission gets an error, never
another student's state: every kernel is forked fresh from a server that never ran student
code, and every process left by a submission is killed before the next one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from kdlab.grading import sandbox
from kdlab.grading.sandbox import Capabilities, Limits

__all__ = ["Job", "Worker", "close_workers", "kill_user", "worker"]

# Modules imported once by the kernel server; student notebooks import them again for free.
# torch's first backward pass imports sympy (through symbolic_shapes): 0.6 CPU seconds;
# kdlab.metrics imports torchmetrics: 4 CPU seconds, in every kernel that uses it.
PRELOAD = (
    "torch",
    "torch.fx.experimental.symbolic_shapes",
    "kdlab",
    "kdlab.data",
    "kdlab.distill",
    "kdlab.losses",
    "kdlab.metrics",
    "kdlab.models",
    "kdlab.prune",
    "kdlab.quantize",
    "kdlab.recipes",
)
# Room a kernel needs above the server's private memory (ipykernel, the student's data).
HEADROOM_MB = 512
# Time for the grading process itself beyond the wall limit (nbgrader before and after).
MARGIN_SECONDS = 120


@dataclass(frozen=True)
class Job:
    """One submission to grade in its scratch course ``root``; ``spec`` holds the
    :func:`kdlab.grading.sandbox.kernel_spec` arguments besides the limits and the server."""

    root: Path
    assignment: str
    student: str
    db_url: str
    limits: Limits
    caps: Capabilities
    spec: dict
    jupyter: Path  # the kernelspec folder (JUPYTER_PATH)
    runtime: Path  # connection files (JUPYTER_RUNTIME_DIR), private to the grading process
    ipc: Path  # the kernel's ZeroMQ sockets
    warm: bool = True


def kill_user(uid: int) -> None:
    """Kill every process of user ``uid`` (a sandbox user: no other process runs as it)."""
    for _ in range(3):  # a process that forked meanwhile is caught by the next round
        pid = os.fork()
        if pid == 0:
            try:
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # as that user: every process it may signal
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


@contextlib.contextmanager
def _user_lock(uid: int | None):
    """Hold the sandbox user ``uid`` for one submission: two grading runs on one machine
    (two ``kdlab autograde`` at once) take turns instead of sharing, and killing, its
    processes."""
    if uid is None:
        yield
        return
    import fcntl
    import tempfile

    path = Path(tempfile.gettempdir()) / f"kdlab-sandbox-user-{uid}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _kill_group(pidfile: Path) -> None:
    try:
        os.killpg(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


@dataclass
class _Server:
    """The warm kernel server of this grading process."""

    path: Path
    process: subprocess.Popen
    private_mb: float


_SERVER: _Server | None = None


def _start_server() -> None:
    """Start this grading process's kernel server; :func:`_server` waits until it listens."""
    global _SERVER
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="kdlab-kernels-"))  # mode 0700: root's alone
    script = Path(__file__).with_name("kernel_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), str(folder / "server"), *PRELOAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "KDLAB_PROGRESS": "0"},
        cwd=folder,
    )
    _SERVER = _Server(folder / "server", process, 0.0)


def _server() -> _Server:
    """This grading process's kernel server, listening (started anew if it ended)."""
    if _SERVER is None or _SERVER.process.poll() is not None:
        _start_server()
    if not _SERVER.private_mb:
        import json

        ready = _SERVER.process.stdout.readline()
        if not ready:
            raise RuntimeError("the warm kernel server did not start")
        _SERVER.private_mb = json.loads(ready)["private_mb"]
    return _SERVER


def _grade_here(job: Job) -> tuple[bool, str, bool]:
    """In the grading process: nbgrader's autograde of ``job``; (success, log, stopped)."""
    import json

    from nbgrader.apps.api import capture_log
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import Execute
    from traitlets.config.loader import PyFileConfigLoader

    from kdlab.grading.recovery import RecoveringExecute

    server = _server() if job.warm else None
    warm = server is not None and job.limits.memory_mb > server.private_mb + HEADROOM_MB
    spec = sandbox.kernel_spec(
        job.limits, job.caps, **job.spec, server=server.path if warm else None
    )
    spec_dir = job.jupyter / "kernels" / sandbox.KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    pidfile = Path(job.spec["pidfile"])
    stopped = threading.Event()

    def end_leftovers() -> None:
        _kill_group(pidfile)
        if job.caps.uid is not None:
            kill_user(job.caps.uid)

    def stop() -> None:  # the wall limit: a dead kernel now ends grading
        stopped.set()
        end_leftovers()

    config = PyFileConfigLoader("nbgrader_config.py", path=str(job.root)).load_config()
    config.CourseDirectory.db_url = job.db_url
    config.Execute.timeout = job.limits.cell_seconds
    # Output may trail a cell's reply on a busy machine; nbgrader's 4 s made the whole
    # submission fail (CellTimeoutError "Timeout waiting for IOPub output").
    config.Execute.iopub_timeout = job.limits.cell_seconds
    config.Execute.kernel_name = sandbox.KERNEL_NAME
    config.RecoveringExecute.before_restart = end_leftovers
    config.RecoveringExecute.is_stopped = lambda: stopped.is_set()  # config is deep-copied
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(job.ipc / "kernel")
    steps = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [
        RecoveringExecute if step is Execute else step for step in steps
    ]
    os.environ.update(JUPYTER_PATH=str(job.jupyter), JUPYTER_RUNTIME_DIR=str(job.runtime))
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = job.assignment, job.student
    app = Autograde(coursedir=coursedir, config=config)
    app.force = app.create_student = True
    with _user_lock(job.caps.uid):
        timer = threading.Timer(job.limits.notebook_seconds, stop)
        timer.start()
        try:
            result = capture_log(app)
        finally:
            timer.cancel()
            end_leftovers()
    log = result.get("log", "") + result.get("error", "")
    return result["success"] and not stopped.is_set(), log, stopped.is_set()


def _serve(fd: int) -> None:
    """The grading process's loop: a job in, its outcome out, until the socket ``fd``
    closes."""
    import logging

    conn = Connection(fd)
    _start_server()  # it imports torch while this process imports nbgrader
    import nbgrader.converters  # noqa: F401

    null = os.open(os.devnull, os.O_WRONLY)  # cold kernels' own output goes nowhere
    os.dup2(null, 1)
    os.dup2(null, 2)
    for name in ("traitlets", "NotebookClient"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        try:
            conn.send(_grade_here(job))
        except Exception as err:  # reported as this submission's error, never lost
            import traceback

            conn.send((False, f"{traceback.format_exc()}\n{err.__class__.__name__}: {err}", False))


class Worker:
    """A grading process (see the module), replaced when it dies or hangs."""

    def __init__(self) -> None:
        self._process = None
        self._conn = None

    def start(self) -> None:
        """Start the grading process unless it runs (it loads in the background)."""
        if self._process is not None and self._process.poll() is None:
            return
        # A new interpreter, not multiprocessing's spawn, which would run the instructor's
        # script again in it.
        ours, theirs = socket.socketpair()
        command = f"from kdlab.grading.warm_worker import _serve; _serve({theirs.fileno()})"
        self._process = subprocess.Popen(
            [sys.executable, "-c", command], pass_fds=[theirs.fileno()], start_new_session=True
        )
        theirs.close()
        self._conn = Connection(ours.detach())

    def close(self) -> None:
        if self._process is not None:
            self._conn.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def grade(self, job: Job) -> tuple[bool, str, bool]:
        """``job`` graded in the grading process: (success, nbgrader's log, stopped at the
        wall limit)."""
        for _ in range(2):  # a grading process that died gets one more try, a hung one not
            self.start()
            hung = False
            try:
                self._conn.send(job)
                hung = not self._conn.poll(job.limits.notebook_seconds + MARGIN_SECONDS)
                if not hung:
                    return self._conn.recv()
            except (EOFError, OSError):
                pass
            self._process.kill()  # its kernels die with the slot user's processes below
            self._process.wait()
            self._process = None
            if job.caps.uid is not None:
                kill_user(job.caps.uid)
            if hung:
                break
        return False, "the grading process died or hung", False


_WORKERS: dict[int, Worker] = {}
_LOCK = threading.Lock()


def worker(slot: int) -> Worker:
    """The grading process of ``slot`` (one submission at a time each)."""
    with _LOCK:
        if slot not in _WORKERS:
            _WORKERS[slot] = Worker()
        return _WORKERS[slot]


@atexit.register
def close_workers() -> None:
    """End every grading process (and its kernel server); the next submission starts anew."""
    with _LOCK:
        for each in _WORKERS.values():
            each.close()
        _WORKERS.clear()
