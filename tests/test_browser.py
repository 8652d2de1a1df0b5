"""JupyterLab in a real browser, the way a learner uses it.

A JupyterLab server runs on a temporary copy of ``course/``, in fast and offline mode with
the tests' private cache, and headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) works in it with the menus, the mouse and the
keyboard:

- notebook 02 is run with Run > Run All Cells; its temperature widget must render, and
  moving the T slider with the arrow keys must redraw the widget's figure; the browser's
  console must show no severe error. A screenshot goes to build/browser/.
- assignment a2, released as students get it, is opened; its first task is run untouched
  (the test cell shows NotImplementedError), then its answer is typed in (the reference
  solution) and run again: the visible test cell prints "visible tests passed", no error.

Skipped, with the reason, where chromium, chromedriver, selenium or JupyterLab is missing;
``.ci/run`` installs the first two as root (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest


def _missing_tool() -> str | None:
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            return (
                f"{tool} not found: the browser tests need Debian's chromium and "
                "chromium-driver (apt-get install chromium chromium-driver)"
            )
    if not (Path(sys.executable).parent / "jupyter").exists():
        return f"JupyterLab is not installed beside {sys.executable} (the course extra)"
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(_missing_tool() is not None, reason=_missing_tool() or ""),
]

pytest.importorskip("selenium", reason="selenium is not installed (the test extra)")
pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the course extra)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from kdlab.grading import release  # noqa: E402
from kdlab.grading.nbgrader import copy_course, grade_id, source_of  # noqa: E402
from kdlab.grading.releasing import BEGIN_SOLUTION, END_SOLUTION  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "build" / "browser"
NOTEBOOK = "02_soft_targets.ipynb"
ASSIGNMENT = "a2_quantization_pruning"
TASK = "scale_zero_point"  # a2's first task: arithmetic on Python numbers, no data, no model
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")

START_S = 90  # JupyterLab up, a page loaded, a kernel started
RUN_ALL_S = 240  # notebook 02 in fast mode: about 20 s on a 2-core CPU
CELL_S = 60  # one cell of a2, or one redraw of the widget
PROMPT = re.compile(r"^\[\d+\]:$")


# --- the JupyterLab server --------------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def page(self, path: str) -> str:
        """The URL that opens ``path`` alone (``reset``: no tab left from an earlier test)."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def kernel_idle(self, path: str) -> bool:
        """The server's view: a kernel runs for the notebook at ``path`` and is idle."""
        try:
            sessions = self.api("/api/sessions")
        except OSError:
            return False
        return any(
            s.get("path") == path and (s.get("kernel") or {}).get("execution_state") == "idle"
            for s in sessions
        )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_home(home: Path, cache: Path) -> dict[str, str]:
    """The server's environment: private Jupyter folders (no user settings, workspaces or
    kernels), fast and offline mode, the tests' cache. The kernel draws with the inline
    backend, as for a learner, so the tests' headless MPLBACKEND is not passed on."""
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    # No update check and no news feed: nothing to fetch, nothing popping up.
    lab = {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}
    (config / "jupyter_server_config.json").write_text(json.dumps({"LabApp": lab}))
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        KDLAB_FAST="1",
        KDLAB_OFFLINE="1",
        KDLAB_CACHE=str(cache),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    return env


def _descendants(pid: int) -> list[tuple[int, bytes]]:
    """The processes below ``pid`` (kernels run in sessions of their own), with their
    command lines, so that what outlives the server can be ended, and nothing else."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append(child)
                todo.append(child)
    out = []
    for child in found:
        with suppress(OSError):
            out.append((child, Path(f"/proc/{child}/cmdline").read_bytes()))
    return out


def _stop_lab(proc: subprocess.Popen, lab: Lab) -> None:
    """Shut the server down with its API (it ends its kernels), then by signal; end any
    process of its own that is still there."""
    children = _descendants(proc.pid)
    if proc.poll() is None:
        with suppress(OSError):
            lab.api("/api/shutdown", method="POST")
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    for pid, cmdline in children:
        with suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                os.kill(pid, signal.SIGKILL)


def _start_lab(root: Path, home: Path, cache: Path) -> tuple[subprocess.Popen, Lab]:
    env = _lab_home(home, cache)
    token = secrets.token_hex(16)
    for attempt in range(3):  # a port taken between choosing and binding it: another one
        port = _free_port()
        log = home / f"jupyterlab-{attempt}.log"
        command = [
            str(Path(sys.executable).parent / "jupyter"),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=root,  # nbgrader's server extension looks for a course here
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
        deadline = time.monotonic() + START_S
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                lab.api("/api/status")
                return proc, lab
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        _stop_lab(proc, lab)
        if time.monotonic() >= deadline:
            break
    raise RuntimeError(f"JupyterLab did not start; the end of its log:\n{lab.log_tail()}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, private_cache):
    """A JupyterLab server on a temporary copy of course/; always stopped afterwards."""
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(
        REPO / "course",
        root / "course",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    proc, server = _start_lab(root, tmp_path_factory.mktemp("lab-home"), private_cache)
    try:
        yield server
    finally:
        _stop_lab(proc, server)


# --- the browser ------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through Debian's chromedriver (no driver or browser download),
    its console log kept; always quit afterwards."""
    options = Options()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # as root, and in containers without user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path=shutil.which("chromedriver"),
        log_output=str(tmp_path / "chromedriver.log"),
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(START_S)
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()


@contextmanager
def failure_artifacts(driver, lab: Lab, name: str):
    """On failure: a screenshot in build/browser/, the browser's console errors and the end
    of JupyterLab's log."""
    try:
        yield
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        with suppress(Exception):
            driver.save_screenshot(str(SHOTS / f"{name}_failure.png"))
            print(f"\nscreenshot: {SHOTS / f'{name}_failure.png'}")
        with suppress(Exception):
            print(f"console errors: {severe_console_errors(driver)}")
        print(f"JupyterLab log:\n{lab.log_tail()}")
        raise


def wait(driver, seconds: float, condition, message: str):
    return WebDriverWait(driver, seconds, poll_frequency=0.25).until(condition, message)


def severe_console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def screenshot(driver, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


# The notebook on show (other tabs' notebooks stay in the page, hidden).
PANEL = "const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
INDICATOR_IDLE = (
    PANEL
    + """
const e = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
return !!e && e.dataset.status === 'idle';
"""
)
CODE_PROMPTS = (
    PANEL
    + """
if (!panel) return [];
return Array.from(panel.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'))
  .map(e => e.textContent.trim());
"""
)
CELLS = PANEL + "return panel ? Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell')) : [];"
NOTEBOOK_ELEMENT = PANEL + "return panel.querySelector('.jp-Notebook');"
OUTPUTS = """
return Array.from(arguments[0].querySelectorAll('.jp-OutputArea-output'))
  .map(o => [o.dataset.mimeType || '', o.textContent]);
"""
EDITOR_LINES = """
return Array.from(arguments[0].querySelectorAll('.jp-InputArea-editor .cm-line'))
  .map(e => e.textContent);
"""
PROMPT_OF = "return arguments[0].querySelector('.jp-InputArea-prompt').textContent.trim();"
CENTER = "arguments[0].scrollIntoView({block: 'center'});"
TOP = "arguments[0].scrollIntoView({block: 'start'});"


def open_notebook(driver, lab: Lab, path: str):
    """Open ``path`` in JupyterLab and wait until all its cells are there and its kernel
    is idle; return the cells' elements, in the notebook's order."""
    cells = len(json.loads((lab.root / path).read_text(encoding="utf-8"))["cells"])
    driver.get(lab.page(path))
    wait(
        driver,
        START_S,
        lambda d: (
            len(d.execute_script(CELLS)) == cells
            and d.execute_script(INDICATOR_IDLE)
            and lab.kernel_idle(path)
        ),
        f"{path} did not open with its {cells} cells and an idle kernel",
    )
    return driver.execute_script(CELLS)


def click_menu(driver, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its ``item``."""

    def find(selector: str, text: str):
        return next(
            (e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.text == text), None
        )

    wait(driver, 10, lambda d: find(".lm-MenuBar-itemLabel", menu), f"no menu {menu!r}").click()
    wait(driver, 10, lambda d: find(".lm-Menu-itemLabel", item), f"no item {item!r}").click()


def tracebacks(driver, element) -> list[str]:
    return [
        text[-1500:]
        for mime, text in driver.execute_script(OUTPUTS, element)
        if mime == "application/vnd.jupyter.stderr" and "Traceback" in text
    ]


# --- notebook 02 and its temperature widget ------------------------------------------------

T_SLIDER = (
    PANEL
    + """
const s = panel && Array.from(panel.querySelectorAll('.widget-hslider'))
  .find(e => e.querySelector('.widget-label').textContent.trim() === 'T');
if (!s) return null;
const box = s.closest('.widget-vbox');
return {
  box: box,
  handle: s.querySelector('.noUi-handle'),
  readout: s.querySelector('.widget-readout').textContent.trim(),
  value: s.querySelector('.noUi-handle').getAttribute('aria-valuenow'),
  images: Array.from(box.querySelectorAll('.jp-RenderedImage img')).map(i => i.src),
  text: box.textContent,
};
"""
)


def run_all_finished(driver, lab: Lab, path: str):
    """After Run All Cells: the prompts once the kernel is idle and none is queued."""
    prompts = driver.execute_script(CODE_PROMPTS)
    if not prompts or any(p == "[*]:" for p in prompts) or not PROMPT.match(prompts[0]):
        return False
    if not (driver.execute_script(INDICATOR_IDLE) and lab.kernel_idle(path)):
        return False
    return prompts


def test_temperature_widget_in_notebook_02(lab, browser):
    path = f"course/{NOTEBOOK}"
    with failure_artifacts(browser, lab, "temperature_widget"):
        open_notebook(browser, lab, path)
        click_menu(browser, "Run", "Run All Cells")
        prompts = wait(
            browser, RUN_ALL_S, lambda d: run_all_finished(d, lab, path), "Run All Cells hung"
        )
        notebook = browser.execute_script(NOTEBOOK_ELEMENT)
        errors = tracebacks(browser, notebook)
        assert not errors, f"{NOTEBOOK} raised in the browser:\n" + "\n".join(errors)
        assert all(PROMPT.match(p) for p in prompts), f"cells left unrun: {prompts}"

        wait(browser, CELL_S, lambda d: d.execute_script(T_SLIDER), "no T slider")
        assert "Error displaying widget" not in notebook.get_attribute("textContent")
        wait(
            browser,
            CELL_S,
            lambda d: len((d.execute_script(T_SLIDER) or {}).get("images", [])) == 1,
            "the widget shows no figure, or more than one",
        )
        before = browser.execute_script(T_SLIDER)
        assert before["readout"] == "1.00", before["readout"]

        # A learner clicks the slider's handle and presses the right arrow: T 1 -> 3 in
        # four steps, each one redrawn by the kernel.
        browser.execute_script(CENTER, before["handle"])
        ActionChains(browser).click(before["handle"]).perform()
        for _ in range(4):
            before["handle"].send_keys(Keys.ARROW_RIGHT)
        settled = {"images": None, "since": 0.0}

        def redrawn(d):
            """The new figure, once the same one has shown for a second with the kernel
            idle: the last step's, not one in between."""
            now = d.execute_script(T_SLIDER) or {"readout": None, "value": None, "images": []}
            moved = now["readout"] == "3.00" and now["value"] == "3.0"
            fresh = len(now["images"]) == 1 and now["images"] != before["images"]
            if not (moved and fresh and lab.kernel_idle(path)):
                settled["images"] = None
                return False
            if now["images"] != settled["images"]:
                settled.update(images=now["images"], since=time.monotonic())
            return now if time.monotonic() - settled["since"] >= 1.0 else False

        after = wait(browser, CELL_S, redrawn, "moving T to 3 did not redraw the figure")
        assert "Error displaying widget" not in notebook.get_attribute("textContent")
        assert "Traceback" not in after["text"], after["text"][-1500:]

        browser.execute_script(CENTER, after["box"])
        shot = screenshot(browser, "temperature_widget")
        errors = severe_console_errors(browser)
        assert not errors, f"severe errors in the browser's console: {errors}"
    print(f"\nscreenshot: {shot}")


# --- a released assignment, as a student opens it --------------------------------------------


def solution_lines(source: dict, gid: str) -> list[str]:
    """The reference solution of cell ``gid``: the lines between its solution markers."""
    cell = next(c for c in source["cells"] if grade_id(c) == gid)
    lines = source_of(cell).split("\n")
    begin = next(i for i, line in enumerate(lines) if BEGIN_SOLUTION in line)
    end = next(i for i, line in enumerate(lines) if END_SOLUTION in line)
    return lines[begin + 1 : end]


def run_cell(driver, lab: Lab, path: str, cell) -> list[tuple[str, str]]:
    """Select ``cell`` with a click on its prompt and run it with Ctrl+Enter; wait for its
    new execution count and an idle kernel; return its outputs (mime type, text)."""
    before = driver.execute_script(PROMPT_OF, cell)
    driver.execute_script(CENTER, cell)
    prompt = cell.find_element(By.CSS_SELECTOR, ".jp-InputArea-prompt")
    ActionChains(driver).click(prompt).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(
        Keys.CONTROL
    ).perform()

    def done(d):
        now = d.execute_script(PROMPT_OF, cell)
        return PROMPT.match(now) and now != before and d.execute_script(INDICATOR_IDLE)

    wait(driver, CELL_S, lambda d: done(d) and lab.kernel_idle(path), "the cell did not run")
    return [tuple(o) for o in driver.execute_script(OUTPUTS, cell)]


def type_answer(driver, cell, lines: list[str]) -> None:
    """Select the stub (from ``# YOUR CODE HERE`` to the end of ``raise
    NotImplementedError()``) with the keyboard and type ``lines`` over it; the editor
    indents each new line like the one before."""
    driver.execute_script(CENTER, cell)
    raise_line = next(
        e
        for e in cell.find_elements(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-line")
        if e.text.strip() == STUB[1]
    )
    actions = ActionChains(driver).click(raise_line).send_keys(Keys.END)
    actions.key_down(Keys.SHIFT).send_keys(Keys.UP, Keys.HOME).key_up(Keys.SHIFT)
    for i, line in enumerate(lines):
        if i:
            actions.send_keys(Keys.ENTER)
        actions.send_keys(line.strip())
    actions.send_keys(Keys.ESCAPE).perform()


def test_student_answers_a2_task_1(lab, browser, tmp_path):
    course = copy_course(REPO / "assignments", tmp_path / "course", [ASSIGNMENT])
    leaks = release(course, [ASSIGNMENT])[ASSIGNMENT]
    assert leaks == [], leaks
    # The student's copy, as nbgrader's fetch puts it: a folder named after the assignment.
    shutil.copytree(course / "release" / ASSIGNMENT, lab.root / ASSIGNMENT)
    path = f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    released = json.loads((lab.root / path).read_text(encoding="utf-8"))
    source = json.loads(
        (course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text(encoding="utf-8")
    )
    index = {grade_id(c): i for i, c in enumerate(released["cells"]) if grade_id(c)}
    setup, answer, test = index["setup"], index[TASK], index[f"test_{TASK}"]
    stub = source_of(released["cells"][answer]).split("\n")
    assert [line.strip() for line in stub[-2:]] == list(STUB), stub[-2:]
    solution = solution_lines(source, TASK)
    indent = {len(line) - len(line.lstrip()) for line in solution if line.strip()}
    assert len(indent) == 1, "typing relies on the editor's indentation: one level only"
    expected = stub[:-2] + solution

    with failure_artifacts(browser, lab, "assignment_a2"):
        cells = open_notebook(browser, lab, path)
        browser.execute_script(CENTER, cells[answer])  # the editor draws the lines on show
        editor = browser.execute_script(EDITOR_LINES, cells[answer])
        assert editor == stub, "the answer cell in the browser is not the released one"

        # Untouched, the visible tests fail where the student has to write code.
        outputs = run_cell(browser, lab, path, cells[setup])
        assert all(mime != "application/vnd.jupyter.stderr" for mime, _ in outputs), outputs
        assert run_cell(browser, lab, path, cells[answer]) == []
        outputs = run_cell(browser, lab, path, cells[test])
        assert any("NotImplementedError" in text for _, text in outputs), outputs

        type_answer(browser, cells[answer], solution)
        typed = browser.execute_script(EDITOR_LINES, cells[answer])
        assert typed == expected, f"typed:\n{chr(10).join(typed)}"

        assert run_cell(browser, lab, path, cells[answer]) == []
        outputs = run_cell(browser, lab, path, cells[test])
        texts = "\n".join(text for _, text in outputs)
        assert "visible tests passed" in texts, outputs
        assert all(mime != "application/vnd.jupyter.stderr" for mime, _ in outputs), outputs

        browser.execute_script(TOP, cells[answer])  # the answer, its test and the output
        shot = screenshot(browser, "assignment_a2_task1")
        errors = severe_console_errors(browser)
        assert not errors, f"severe errors in the browser's console: {errors}"
    print(f"\nscreenshot: {shot}")
