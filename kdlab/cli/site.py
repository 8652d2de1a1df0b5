"""A static site to read the course and the API outside a checkout (``make site``).

``build/site/`` gets ``course/NN_*.html`` (each notebook rendered with nbconvert, from its
executed copy in ``build/course/`` when there is one, else from ``course/`` without
outputs), ``api/`` (one pdoc page per public module of kdlab) and ``index.html`` linking
both. Every course page says how its outputs were made: the course runner executes
notebooks with papermill, which records the ``FAST`` parameter it passed in the notebook's
metadata, so each page is labelled fast mode, full mode or not executed from that record.
"""

from __future__ import annotations

import html
import importlib
import pkgutil
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["CoursePage", "build_site", "public_modules", "run_label"]


@dataclass
class CoursePage:
    name: str  # the notebook's stem, e.g. 00_welcome
    title: str
    label: str  # fast mode, full mode, not executed, ...
    href: str  # relative to the site's root


def public_modules(package: str = "kdlab") -> list[str]:
    """The package and every module or sub-package in it whose name has no leading ``_``."""
    root = importlib.import_module(package)
    found = [package]
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return sorted(found)


def run_label(notebook: nbformat.NotebookNode) -> tuple[str, str]:
    """A short label and a sentence saying how the notebook's outputs were made."""
    record = notebook.metadata.get("papermill")
    if record is None:
        if any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
            return "mode unknown", "Executed outside the course runner: the mode is unknown."
        return "not executed", (
            "Not executed: the notebook without its outputs. Run <code>make course</code> "
            "(or <code>make course FAST=1</code>), then <code>make site</code>."
        )
    fast = record.get("parameters", {}).get("FAST")
    when = f" on {record['end_time'][:10]}" if record.get("end_time") else ""
    if fast is True:
        label = "fast mode"
        sentence = (
            f"Outputs from a fast-mode run{when} (<code>make course FAST=1</code>): small "
            "subsets and few steps, so the numbers show the method working, not its results."
        )
    elif fast is False:
        label = "full mode"
        sentence = f"Outputs from a full-mode run{when} (<code>make course</code>)."
    else:
        label, sentence = "mode unknown", f"Outputs from a run{when} without a FAST parameter."
    if record.get("exception"):
        label, sentence = f"{label}, stopped with an error", f"{sentence} It stopped with an error."
    return label, sentence


def _title(notebook: nbformat.NotebookNode, default: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def render_course(course_dir: Path, executed_dir: Path, out: Path) -> list[CoursePage]:
    """Render ``course_dir/NN_*.ipynb`` in name order, preferring executed copies."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for source in sorted(course_dir.glob("[0-9]*.ipynb")):
        executed = executed_dir / source.name
        notebook = nbformat.read(executed if executed.exists() else source, as_version=4)
        title = _title(notebook, source.stem)
        label, sentence = run_label(notebook)
        banner = (
            '<div class="kdlab-run" style="border-left: 4px solid #c60; padding: 0.5em 1em; '
            f'background: #fff6e8;"><strong>{html.escape(label)}</strong>: {sentence}</div>'
        )
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
        body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
        (out / f"{source.stem}.html").write_text(body, encoding="utf-8")
        pages.append(CoursePage(source.stem, title, label, f"{out.name}/{source.stem}.html"))
    return pages


def render_api(modules: list[str], out: Path) -> None:
    """One pdoc page per module in ``modules`` (given one by one: pdoc's own walk follows
    ``__all__``, which names functions, not sub-modules), its module index and search."""
    import pdoc.doc
    import pdoc.render

    pdoc.render.configure(docformat="restructuredtext", footer_text="kdlab")
    documented = {name: pdoc.doc.Module.from_name(name) for name in modules}
    for name, module in documented.items():
        page = out / f"{name.replace('.', '/')}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(pdoc.render.html_module(module, documented), encoding="utf-8")
    (out / "index.html").write_text(pdoc.render.html_index(documented), encoding="utf-8")
    search = pdoc.render.search_index(documented)
    if search:
        (out / "search.js").write_text(search, encoding="utf-8")


def _index(pages: list[CoursePage], modules: list[str]) -> str:
    course = "\n".join(
        f'<li><a href="{html.escape(p.href)}">{html.escape(p.title)}</a> '
        f'<span class="label">({html.escape(p.label)})</span></li>'
        for p in pages
    )
    api = "\n".join(
        f'<li><a href="api/{name.replace(".", "/")}.html"><code>{name}</code></a></li>'
        for name in modules
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kdlab: the course and the API</title>
<style>body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; line-height: 1.5 }}
.label {{ color: #777 }}</style></head>
<body>
<h1>kdlab: knowledge distillation and model compression</h1>
<h2>The course</h2>
<ul>
{course}
</ul>
<h2><a href="api/index.html">API reference</a></h2>
<ul>
{api}
</ul>
</body></html>
"""


def build_site(
    out: Path,
    course_dir: Path = Path("course"),
    executed_dir: Path = Path("build/course"),
    modules: list[str] | None = None,
) -> list[CoursePage]:
    """Write the course pages, the API reference and ``index.html`` into ``out``; what an
    earlier build left in ``out/course``, ``out/api`` and ``out/index.html`` is replaced."""
    modules = public_modules() if modules is None else modules
    for old in (out / "course", out / "api"):
        shutil.rmtree(old, ignore_errors=True)
    pages = render_course(course_dir, executed_dir, out / "course")
    render_api(modules, out / "api")
    (out / "index.html").write_text(_index(pages, modules), encoding="utf-8")
    return pages
