"""Run the course: execute every notebook in order into a build folder and summarise.

Each notebook runs with papermill (so the ``parameters`` cell receives ``FAST``) in a fresh
kernel, with ``course/`` as its working folder. The summary lists status, seconds and the
key results each notebook displayed with :func:`kdlab.report.key_results`.

The kernel talks to the runner over local IPC sockets where the platform has them: over TCP
without CurveZMQ keys ipykernel warns once per notebook that its traffic is unencrypted
(ipykernel/kernelapp.py, ``init_sockets``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from kdlab.report import RESULTS_MIME, format_value

__all__ = ["NotebookRun", "run_course", "collect_results", "summary_table", "kernel_config"]


@dataclass
class NotebookRun:
    name: str
    status: str
    seconds: float
    results: dict = field(default_factory=dict)
    error: str = ""


def collect_results(notebook: nbformat.NotebookNode) -> dict:
    """All key results a notebook displayed, merged in order."""
    results: dict = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULTS_MIME in data:
                results.update(data[RESULTS_MIME])
    return results


def _first_error(notebook: nbformat.NotebookNode) -> str:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    return ""


def kernel_config(socket_dir: Path):
    """The kernel manager's settings for a quiet, private kernel: IPC sockets in
    ``socket_dir`` where the platform has Unix sockets, else TCP with CurveZMQ keys where
    jupyter_client can provision them (the kernelspec must declare ``supported_encryption``),
    else plain TCP. The socket path is absolute: jupyter_client's default is relative to the
    working folder, so two runs side by side would share it."""
    import zmq
    from jupyter_client import AsyncKernelManager
    from traitlets.config import Config

    config = Config()
    if os.name == "posix" and zmq.has("ipc"):
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(Path(socket_dir).resolve() / "kernel")
    elif zmq.has("curve") and "transport_encryption" in AsyncKernelManager.class_trait_names():
        config.KernelManager.transport_encryption = "auto"
    return config


def run_course(
    course_dir: Path,
    build_dir: Path,
    *,
    fast: bool = False,
    only: list[str] | None = None,
    timeout: int = 1200,
) -> list[NotebookRun]:
    """Execute ``course_dir/*.ipynb`` in name order (or those whose name starts with one of
    ``only``) into ``build_dir``; a failing notebook is recorded and the run goes on."""
    import papermill

    notebooks = sorted(course_dir.glob("[0-9]*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in only)]
    if not notebooks:
        raise FileNotFoundError(f"no notebooks to run in {course_dir} (filter: {only})")
    build_dir.mkdir(parents=True, exist_ok=True)
    if fast:
        os.environ["KDLAB_FAST"] = "1"
    runs = []
    for path in notebooks:
        out = build_dir / path.name
        print(f"running {path.name} ...", flush=True)
        start = time.perf_counter()
        status, error = "ok", ""
        try:
            with tempfile.TemporaryDirectory(prefix="kdlab-kernel-") as sockets:
                papermill.execute_notebook(
                    str(path),
                    str(out),
                    parameters={"FAST": fast},
                    cwd=str(course_dir),
                    progress_bar=False,
                    execution_timeout=timeout,
                    kernel_name="python3",
                    config=kernel_config(Path(sockets)),
                )
        except Exception as err:  # record and go on: one broken notebook must not hide the rest
            status, error = "FAILED", f"{err.__class__.__name__}: {str(err).strip()[-300:]}"
        seconds = time.perf_counter() - start
        results = {}
        if out.exists():
            executed = nbformat.read(out, as_version=4)
            results = collect_results(executed)
            error = error and (_first_error(executed) or error)
        runs.append(NotebookRun(path.stem, status, seconds, results, error))
        print(f"  {status} in {seconds:.0f} s", flush=True)
    (build_dir / "summary.json").write_text(json.dumps([r.__dict__ for r in runs], indent=2))
    (build_dir / "summary.md").write_text(summary_table(runs, fast))
    return runs


def summary_table(runs: list[NotebookRun], fast: bool = False) -> str:
    """A Markdown table: notebook, status, seconds, key results."""
    mode = "fast mode" if fast else "full mode"
    lines = [
        f"Course run ({mode})",
        "",
        "| notebook | status | seconds | key results |",
        "|---|---|---|---|",
    ]
    for run in runs:
        shown = "; ".join(f"{k} = {format_value(v)}" for k, v in run.results.items())
        if run.error:
            shown = f"{run.error} {shown}".strip()
        lines.append(f"| {run.name} | {run.status} | {run.seconds:.0f} | {shown} |")
    total = sum(r.seconds for r in runs)
    lines.append(f"\nTotal: {total:.0f} s, {sum(r.status == 'ok' for r in runs)}/{len(runs)} ok")
    return "\n".join(lines) + "\n"
