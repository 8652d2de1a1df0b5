"""`make site`: the course rendered to HTML with a label saying how its outputs were made,
one API page per public module, an index linking them, and no broken relative link.

The site is built once from the real (unexecuted) course notebooks, two of them replaced by
executed copies made here (one fast-mode, one full-mode run), and the real API reference.
"""

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from kdlab.cli.site import build_site, public_modules

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
PACKAGE = ROOT / "kdlab"


def modules_on_disk() -> list[str]:
    """Every module and sub-package of kdlab whose name has no leading underscore."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(part.startswith("_") for part in parts):
            found.append(".".join(parts))
    return sorted(found)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        self.links += [(tag, value) for name, value in attrs if name in ("href", "src") and value]


def links_in(page: Path) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.links


def broken_links(site: Path) -> list[str]:
    """Relative href/src targets that do not exist (external, data: and #anchor links are
    not checked)."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        for _, url in links_in(page):
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            if not (page.parent / unquote(parts.path)).exists():
                broken.append(f"{page.relative_to(site)} -> {url}")
    return broken


def missing_api_pages(site: Path, modules: list[str]) -> list[str]:
    return [m for m in modules if not (site / "api" / f"{m.replace('.', '/')}.html").is_file()]


def executed_copy(source: Path, fast: bool) -> nbformat.NotebookNode:
    """What the course runner writes: the notebook with outputs and papermill's record."""
    notebook = nbformat.read(source, as_version=4)
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text=f"executed here, FAST={fast}\n")]
    code.execution_count = 1
    notebook.metadata["papermill"] = {
        "parameters": {"FAST": fast},
        "end_time": "2025-01-02T03:04:05",
        "exception": None,
    }
    return notebook


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    sources = sorted(COURSE.glob("[0-9]*.ipynb"))
    assert len(sources) >= 3, "the course needs at least three notebooks for this test"
    executed = tmp_path_factory.mktemp("executed")
    nbformat.write(executed_copy(sources[0], fast=True), executed / sources[0].name)
    nbformat.write(executed_copy(sources[1], fast=False), executed / sources[1].name)
    out = tmp_path_factory.mktemp("site")
    pages = build_site(out, COURSE, executed)
    return out, sources, pages


def title_of(source: Path) -> str:
    for cell in json.loads(source.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return source.stem


def index_anchors(index: Path) -> list[tuple[str, str]]:
    """(href, text) of every link in the index, tags removed from the text."""
    found = re.findall(r'<a href="([^"]+)">(.*?)</a>', index.read_text(encoding="utf-8"))
    return [
        (html.unescape(url), html.unescape(re.sub(r"<[^>]+>", "", text))) for url, text in found
    ]


def test_every_public_module_has_an_api_page(site):
    out, _, _ = site
    modules = modules_on_disk()
    assert "kdlab.cli.site" in modules and "kdlab.losses.logits" in modules
    assert public_modules() == modules, "the site's module list and the package's files differ"
    assert not missing_api_pages(out, modules)


def test_index_links_every_course_page_in_order_with_its_title(site):
    out, sources, _ = site
    course_links = [
        (url, text) for url, text in index_anchors(out / "index.html") if url.startswith("course/")
    ]
    assert [url for url, _ in course_links] == [f"course/{s.stem}.html" for s in sources]
    assert [text for _, text in course_links] == [title_of(s) for s in sources]
    assert ("api/index.html", "API reference") in index_anchors(out / "index.html")


def test_each_course_page_says_how_its_outputs_were_made(site):
    out, sources, pages = site
    expected = ["fast mode", "full mode"] + ["not executed"] * (len(sources) - 2)
    assert [p.label for p in pages] == expected
    for source, label in zip(sources, expected, strict=True):
        page = (out / "course" / f"{source.stem}.html").read_text(encoding="utf-8")
        banner = re.search(r'<div class="kdlab-run"[^>]*>(.*?)</div>', page, re.S)
        assert banner and label in banner.group(1), f"{source.stem}: no '{label}' banner"
        assert f"<title>{html.escape(title_of(source))}</title>" in page
    first = (out / "course" / f"{sources[0].stem}.html").read_text(encoding="utf-8")
    assert "executed here, FAST=True" in first  # the executed copy's outputs, not the source


def test_no_relative_link_is_broken(site):
    out, _, _ = site
    pages = list(out.rglob("*.html"))
    assert len(pages) > len(modules_on_disk())
    assert sum(len(links_in(p)) for p in pages) > 100
    assert not broken_links(out)


def test_the_checks_can_fail(tmp_path):
    (tmp_path / "api" / "kdlab").mkdir(parents=True)
    (tmp_path / "api" / "kdlab.html").write_text("")
    (tmp_path / "index.html").write_text(
        '<a href="api/kdlab.html">ok</a> <a href="course/00_gone.html#x">gone</a> '
        '<img src="data:image/png;base64,AAAA"> <a href="https://example.org/">out</a> '
        '<a href="#top">anchor</a>'
    )
    assert broken_links(tmp_path) == ["index.html -> course/00_gone.html#x"]
    assert missing_api_pages(tmp_path, ["kdlab", "kdlab.runtime"]) == ["kdlab.runtime"]
