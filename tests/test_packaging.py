"""Packaging: what the code imports is what pyproject.toml declares, where it declares it, and ``physics``
depends on nothing above it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).parents[1]
PROJECT = {"swnn", "physics", "reports", "benchmarks", "tests", "conftest"}
# import name -> distribution name, where they differ
# (dask.distributed is the `distributed` package, which the declared dask[distributed] installs)
DISTRIBUTION = {
    "PIL": "pillow",
    "ot": "pot",
    "pytest_benchmark": "pytest-benchmark",
    "tomli": "tomli",
    "distributed": "dask",
}
# imported only where present, each test skipping with its reason when absent (not a dependency)
OPTIONAL = {"xlb", "jax"}
# imported by the library only where present: Triton comes with the CUDA builds of torch, and the GPU
# permeability step falls back to torch operations without it (physics._lbm_run.triton_usable)
OPTIONAL_RUNTIME = {"triton"}


def _imports(folders: list[str]) -> dict[str, set[str]]:
    """Third-party top-level modules imported under ``folders`` -> the files importing them."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).is_dir() else [ROOT / folder]:
            tree = ast.parse(path.read_text(), filename=str(path))
            names = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
                elif (  # pytest.importorskip("name")
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", None) == "importorskip"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    names.add(node.args[0].value.split(".")[0])
            for name in names - PROJECT - set(sys.stdlib_module_names):
                found.setdefault(DISTRIBUTION.get(name, name), set()).add(str(path.relative_to(ROOT)))
    return found


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {"runtime": _names(project["dependencies"]), **{k: _names(v) for k, v in extras.items()}}


def test_the_library_imports_exactly_its_runtime_dependencies():
    declared = _declared()["runtime"]
    imported = set(_imports(["swnn", "physics", "reports"]))
    assert imported - declared - OPTIONAL_RUNTIME == set(), "imported but not declared"
    # tomli is Python 3.10's tomllib
    assert declared - imported - {"tomli"} == set(), "declared but never imported"


def test_tests_and_benchmarks_import_only_what_the_test_extra_installs():
    declared = _declared()
    available = declared["runtime"] | declared["test"] | {"pytest"}
    imported = _imports(["tests", "benchmarks", "conftest.py"])
    missing = {
        name: files for name, files in imported.items() if name not in available | OPTIONAL | OPTIONAL_RUNTIME
    }
    assert missing == {}
    # the test and benchmark references are not runtime dependencies
    assert {"porespy", "taufactor", "pot", "pytest-benchmark"} & declared["runtime"] == set()
    bench = _imports(["benchmarks"])
    assert set(bench) - declared["runtime"] - declared["bench"] - OPTIONAL == set()


def test_physics_depends_on_nothing_above_it():
    above = {
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in (ROOT / "physics").rglob("*.py")
        for line in path.read_text().splitlines()
        if re.match(r"\s*(from|import)\s+(swnn|reports)\b", line)
    }
    assert above == set()
