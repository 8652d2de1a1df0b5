"""Partial credit after a kernel death: nbgrader's ``Execute`` preprocessor, which on a
dead kernel (``os._exit``, a segfault, a kill, a process flood that took the kernel down)
records the cell as failed, starts a fresh kernel, runs the code cells above it again
(without the cells that died) and goes on with the next cell. The student loses the tests
that depend on the dead cell, not the whole notebook.

The re-run cells keep the outputs of their first run. A notebook whose kernel dies more
than ``max_deaths`` times, or whose grading was stopped (``is_stopped``: the wall limit),
still fails as a whole.
"""

from __future__ import annotations

import copy
import signal

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Any, Integer

__all__ = ["RecoveringExecute"]

DIED = (
    "the kernel died while running this cell (os._exit, a crash, a kill, or too many "
    "processes); grading went on in a fresh kernel that ran the cells above again"
)


class RecoveringExecute(Execute):
    """``Execute`` that survives a kernel's death in a cell (see the module)."""

    max_deaths = Integer(3, help="kernel deaths after which the notebook fails").tag(config=True)
    before_restart = Any(None, help="called before each fresh kernel: end what is left").tag(
        config=True
    )
    is_stopped = Any(None, help="() -> bool: True, a dead kernel ends grading").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._dead: set[int] = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._died(cell, index)
            self._recover(index)
            return cell, self.resources

    def _died(self, cell: NotebookNode, index: int) -> None:
        if self.is_stopped is not None and self.is_stopped():
            raise DeadKernelError("Kernel died: grading was stopped")
        self._dead.add(index)
        if len(self._dead) > self.max_deaths:
            raise DeadKernelError(f"Kernel died in {len(self._dead)} cells")
        why = f"{DIED} ({self._exit_status()})"
        self.log.warning("Kernel died in cell %d (%s); starting a fresh kernel", index, why)
        error = NotebookNode(output_type="error", ename="DeadKernelError", evalue=why)
        error.traceback = [f"DeadKernelError: {why}"]
        cell.setdefault("outputs", []).append(error)

    def _exit_status(self) -> str:
        """How the kernel's process ended, as its exit code or signal."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "exit status unknown"
        signum = -code if code < 0 else code - 128 if code > 128 else 0
        if signum:
            try:
                return f"killed by signal {signum}, {signal.Signals(signum).name}"
            except ValueError:
                return f"killed by signal {signum}"
        return f"exit status {code}"

    def _recover(self, index: int) -> None:
        """A fresh kernel that has run the live code cells above ``index`` again."""
        while True:
            if self.before_restart is not None:
                self.before_restart()
            self._cleanup_kernel()
            self.km = self.create_kernel_manager()
            self.start_new_kernel()
            self.start_new_kernel_client()
            again = [i for i in range(index) if i not in self._dead]
            try:
                for i in again:
                    cell = self.nb.cells[i]
                    if cell.cell_type == "code":  # a copy: the first run's outputs stay
                        self.execute_cell(copy.deepcopy(cell), i, store_history=False)
                return
            except DeadKernelError:
                self._died(self.nb.cells[i], i)
