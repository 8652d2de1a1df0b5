"""Version floors and pins: pyproject.toml's floors cover what torch, torchao and transformers
need when imported and what the declared packages require of each other, the installed
versions satisfy them, constraints.txt pins installable versions that satisfy them too, and
``kdlab check`` prints the versions and the device."""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from pathlib import Path

import tomllib
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from kdlab import runtime
from kdlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.!]*)")

# Where a package checks the torch it runs with at import time, and how the minimum reads
# there. torchao's metadata names no torch at all: it loads its compiled kernels only from
# this torch on. transformers disables its PyTorch models below its minimum.
IMPORT_CHECKS = {
    "torchao": ("__init__.py", r'min_torch_version = _parse_version\("([0-9.]+)"\)'),
    "transformers": ("utils/import_utils.py", r"PyTorch >= ([0-9.]+) is required"),
}


def declared() -> dict[str, Requirement]:
    """pyproject.toml's requirements, the extras' included, by canonical name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def lower_bound(requirement: Requirement) -> Version | None:
    bounds = [
        Version(s.version)
        for s in requirement.specifier
        if s.operator in (">=", ">", "==", "~=", "===") and "*" not in s.version
    ]
    return max(bounds, default=None)


def floors() -> dict[str, Version]:
    return {name: low for name, r in declared().items() if (low := lower_bound(r)) is not None}


def shortfalls(floors: dict[str, Version], needs: dict[tuple[str, str], Version]) -> list[str]:
    """Each need ``(who, package): version`` that the declared floor of ``package`` is below."""
    return [
        f"{package}>={floors[package]} is declared, but {who} needs {package}>={need}"
        for (who, package), need in sorted(needs.items())
        if package in floors and floors[package] < need
    ]


def torch_needed_at_import() -> dict[tuple[str, str], Version]:
    needs = {}
    for package, (relative, pattern) in IMPORT_CHECKS.items():
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin, f"{package} is not installed"
        source = (Path(spec.origin).parent / relative).read_text(encoding="utf-8")
        match = re.search(pattern, source)
        assert match, (
            f"{package} {metadata.version(package)} no longer says {pattern!r} in {relative}: "
            "find where it checks torch's version now and update IMPORT_CHECKS"
        )
        needs[(package, "torch")] = Version(match.group(1))
    for line in metadata.requires("torchao") or []:  # should torchao ever declare it
        r = Requirement(line)
        if canonicalize_name(r.name) == "torch" and (low := lower_bound(r)) is not None:
            needs[("torchao", "torch")] = max(low, needs[("torchao", "torch")])
    return needs


def needed_by_metadata() -> dict[tuple[str, str], Version]:
    """What the installed declared packages require of each other (Requires-Dist, extras left
    out), for those installed in the release series of their floor: the installed release
    stands for the oldest ones the floor allows."""
    wanted = floors()
    needs: dict[tuple[str, str], Version] = {}
    for who, floor in wanted.items():
        try:
            dist = metadata.distribution(who)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version).release[:2] != floor.release[:2]:
            continue
        for line in dist.requires or []:
            r = Requirement(line)
            what = canonicalize_name(r.name)
            if what not in wanted or (r.marker and not r.marker.evaluate({"extra": ""})):
                continue
            if (low := lower_bound(r)) is not None:
                needs[(who, what)] = max(low, needs.get((who, what), low))
    return needs


def pins() -> dict[str, str]:
    result = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.fullmatch(line)
        assert match, (
            f"constraints.txt line {number}: {line!r} is not name==version with a version "
            "PyPI has (no URL, no +local label such as +cpu)"
        )
        result[canonicalize_name(match[1])] = match[2]
    return result


def test_installed_versions_satisfy_the_declared_floors():
    problems = []
    for name, requirement in declared().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement} is declared but not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement} is declared, {name} {installed} is installed")
    assert not problems, "run `make setup`: " + "; ".join(problems)


def test_torch_floor_covers_what_torchao_and_transformers_need_at_import():
    needs = torch_needed_at_import()
    assert set(needs) == {("torchao", "torch"), ("transformers", "torch")}
    assert not shortfalls(floors(), needs)


def test_floors_cover_what_the_declared_packages_require_of_each_other():
    needs = needed_by_metadata()
    assert ("torchvision", "torch") in needs, "torchvision's own torch requirement was not read"
    assert not shortfalls(floors(), needs)


def test_a_floor_below_torchaos_requirement_is_caught():
    """The checks above can fail: the floor pyproject.toml had before, torch>=2.4, is below
    what torchao loads its kernels with, what transformers runs its models with, and what
    torchvision's floor release requires."""
    old = floors() | {"torch": Version("2.4")}
    found = "\n".join(shortfalls(old, torch_needed_at_import() | needed_by_metadata()))
    for who in ("torchao", "transformers", "torchvision"):
        assert f"but {who} needs torch>=" in found, found
    assert not shortfalls(old | {"torch": Version("99")}, torch_needed_at_import())


def test_the_python_floor_is_the_one_the_tests_run_on():
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    assert requires_python == ">=3.11", "the tests (tomllib) and the pinned stack need 3.11"
    assert "(3, 11)" in (ROOT / "Makefile").read_text(), "make setup checks another Python"


def test_constraints_pin_installable_versions_that_satisfy_the_floors():
    pinned = pins()
    assert "kdlab" not in pinned and "pip" not in pinned
    for name in ("torch", "torchvision", "torchao", "transformers", "tokenizers", "nbgrader"):
        assert name in pinned, f"constraints.txt pins no {name}"
    wanted = declared()
    clashes = [
        f"{wanted[name]} is declared, constraints.txt pins {name}=={version}"
        for name, version in pinned.items()
        if name in wanted and not wanted[name].specifier.contains(version, prereleases=True)
    ]
    assert not clashes, "make setup could not resolve: " + "; ".join(clashes)
    header = CONSTRAINTS.read_text().split("\n\n")[0]
    assert "make constraints" in header and "LATEST=1" in header, "the header says how to refresh"


def test_constraints_pin_every_declared_dependency():
    missing = sorted(set(declared()) - set(pins()))
    assert not missing, (
        f"constraints.txt pins no {', '.join(missing)}: after `make setup` installed them, "
        "`make constraints` (tests, then the pins) or `make write-constraints` (pins only)"
    )


def check_output(capsys) -> dict[str, str]:
    """``kdlab check``'s lines ``  key   value`` as a dict (keys are padded to 28 columns)."""
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) == 2}


def test_kdlab_check_prints_the_versions_and_the_device(capsys, monkeypatch):
    monkeypatch.delenv("KDLAB_DEVICE", raising=False)
    shown = check_output(capsys)
    for package in ("torch", "torchao", "transformers", "nbgrader"):
        assert shown.get(package) == metadata.version(package), f"{package}: {shown.get(package)}"
    assert shown["device"] == str(runtime.pick_device())
    cuda = torch.version.cuda
    assert shown["torch build"] == (f"CUDA {cuda}" if cuda else shown["torch build"])
    assert shown["torch build"].startswith(("CUDA", "ROCm", "CPU only"))


def test_kdlab_check_reports_a_device_it_cannot_use(capsys, monkeypatch):
    def refuse(device=None):
        raise ValueError("KDLAB_DEVICE='cuda:7', but this machine has 1 cuda device(s)")

    monkeypatch.setattr(runtime, "pick_device", refuse)
    assert check_output(capsys)["device"].startswith("none: KDLAB_DEVICE='cuda:7'")
