"""The kdlab command as a learner first meets it: python -m kdlab, --version, plain help."""

import re
import subprocess
import sys
from importlib import metadata

import pytest

import kdlab
import kdlab.cli
from kdlab.cli import main, plain_text, version

MARKUP = re.compile(r"``|:[a-z]+(:[a-z]+)?:`")


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def subcommands(capsys) -> list[str]:
    choices = re.search(r"\{([a-z,]+)\}", help_text(capsys))
    assert choices, "the top-level help lists no subcommands"
    return choices.group(1).split(",")


def test_python_dash_m_kdlab_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "kdlab", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kdlab") and "course" in result.stdout


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"kdlab {metadata.version('kdlab')}"


def test_version_falls_back_to_the_package_attribute(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert version() == kdlab.__version__


def test_plain_text_drops_rst_markup():
    text = "``kdlab course`` runs :func:`kdlab.report.key_results` and :py:class:`~x.Y`."
    assert plain_text(text) == "kdlab course runs kdlab.report.key_results and x.Y."
    assert MARKUP.search(text) and not MARKUP.search(plain_text(text))


def test_no_help_page_shows_rst_markup(capsys):
    assert MARKUP.search(kdlab.cli.__doc__), "the check below would pass without any cleaning"
    commands = subcommands(capsys)
    assert {"course", "check", "autograde"} <= set(commands)
    pages = {"kdlab": help_text(capsys)}
    pages |= {command: help_text(capsys, command) for command in commands}
    marked = {
        name: MARKUP.search(page).group(0) for name, page in pages.items() if MARKUP.search(page)
    }
    assert not marked, f"help pages with reStructuredText markup: {marked}"
    assert "kdlab course runs the course" in " ".join(pages["kdlab"].split())


def test_course_with_no_matching_notebook_is_an_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "01_a.ipynb").write_text("{}")
    assert main(["course", "--course-dir", str(tmp_path), "99"]) == 2
    err = capsys.readouterr().err
    assert "no notebooks to run" in err and "kdlab course 02" in err


def test_kdlab_check_finds_the_public_layouts(tmp_path, monkeypatch):
    """`kdlab check` reports the data sets where the loaders find them, GLUE's SST-2 folder and
    the Dubai zip's unpacked folder included."""
    from kdlab.cli.envcheck import environment_report

    glue = tmp_path / "SST-2"
    glue.mkdir()
    for split in ("train", "dev"):
        (glue / f"{split}.tsv").write_text("sentence\tlabel\na fine film\t1\n")
    tile = tmp_path / "Semantic segmentation dataset" / "Tile 1"
    (tile / "images").mkdir(parents=True)
    (tile / "masks").mkdir()
    (tile / "images" / "image_part_001.jpg").write_bytes(b"")
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    data = environment_report()["data"]
    assert data["sst2"] == str(glue)
    assert data["dubai-aerial"] == str(tile.parent)
