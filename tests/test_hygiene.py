"""Repository hygiene: clean notebooks, one dependency list, ruff, the documented commands."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def tracked_notebooks() -> list[str]:
    git = shutil.which("git")
    if git is None:
        return []
    result = subprocess.run(
        [git, "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.split() if result.returncode == 0 else []


def git_available() -> bool:
    git = shutil.which("git")
    return git is not None and (
        subprocess.run([git, "rev-parse"], cwd=ROOT, capture_output=True).returncode == 0
    )


@pytest.mark.skipif(not git_available(), reason="git or the repository is not available")
@pytest.mark.parametrize("path", tracked_notebooks())
def test_tracked_notebook_is_clean(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    notebook = json.loads(text)
    assert notebook.get("nbformat") == 4, f"{path}: not an nbformat 4 notebook"
    problems = []
    for i, cell in enumerate(notebook["cells"]):
        if notebook.get("nbformat_minor", 0) >= 5 and not cell.get("id"):
            problems.append(f"cell {i} has no id (nbformat 4.5 requires one)")
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has execution count {cell['execution_count']}")
    assert not problems, f"{path}: clear outputs and give every cell an id: {problems}"


def normalise(requirement: str) -> str:
    return "".join(requirement.split()).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [
        d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d
    ]
    assert len(pip_lists) == 1, "environment.yml needs exactly one pip: list"
    listed = [normalise(r) for r in pip_lists[0] if normalise(r) != "-e."]
    assert len(listed) == len(set(listed)), "environment.yml lists a package twice"
    assert set(listed) == {normalise(r) for r in wanted}, (
        f"only in environment.yml: {sorted(set(listed) - {normalise(r) for r in wanted})}; "
        f"only in pyproject.toml: {sorted({normalise(r) for r in wanted} - set(listed))}"
    )


def test_ruff_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip(f"ruff is not installed beside {sys.executable}")
    result = subprocess.run(
        [str(ruff), "check", "kdlab", "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_make_test():
    ci = ROOT / ".ci" / "run"
    assert ci.is_file(), ".ci/run is missing"
    assert "make test" in ci.read_text()


def test_readme_names_the_two_commands():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not written yet")
    text = readme.read_text()
    assert "make test" in text and "make course" in text
