"""Imports run one way along the data flow (augbench.devtools.imports): no cycle, no upward import, and every
import inside a function says why it is there."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from augbench.devtools.imports import (
    LAYERS,
    OUTSIDE,
    cycles,
    graph,
    part,
    report,
    unexplained_lazy_imports,
    upward,
)

EDGES = graph()


def test_every_part_of_the_package_sits_in_a_layer():
    parts = {part(module) for module in EDGES} - {"augbench"}
    placed = {name for layer in LAYERS for name in layer} | set(OUTSIDE)
    assert parts <= placed, f"give these a layer in augbench/devtools/imports.py: {sorted(parts - placed)}"


def test_no_import_goes_up_the_layers():
    assert upward(EDGES) == []


def test_no_import_cycle():
    assert cycles(EDGES) == []


def test_every_import_inside_a_function_says_why():
    assert unexplained_lazy_imports() == []


def test_nothing_imports_the_devtools():
    assert [i for imports in EDGES.values() for i in imports
            if part(i.target) == "devtools" and part(i.source) != "devtools"] == []


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "augbench"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return package


def test_the_checks_find_an_upward_import_a_cycle_and_an_unexplained_lazy_import(tmp_path):
    package = write_package(tmp_path, {
        "data/loader.py": "from augbench.augment.pipeline import Pipeline\n",  # data sits below augment
        "augment/pipeline.py": "class Pipeline: ...\n",
        "engine/a.py": "def f():\n    from augbench.engine import b  # lazy: a cycle all the same\n",
        "engine/b.py": "from . import a  # relative imports count too\n",
        "track/log.py": "def f():\n    import json  # lazy: reason given\n\n\ndef g():\n    import os\n",
    })
    edges = graph(package)
    assert [(p.split(" ")[0]) for p in upward(edges)] == ["augbench.data.loader", "augbench.data.loader"]
    assert cycles(edges) == [["augbench.engine.a", "augbench.engine.b"]]
    assert unexplained_lazy_imports(package) == ["augbench/track/log.py:6 imports inside a function without a "
                                                 "comment saying why"]
    text, problems = report(edges, root=package)
    assert problems == 4 and "data sits below augment" in text


@pytest.mark.parametrize("module", ["augbench.track.wandb_logger", "augbench.leaderboard.build", "augbench.cli",
                                    "augbench.tune.storage"])
def test_light_modules_load_no_torch(module):
    """The logger, the leaderboard, the CLI's --help and the storage reader never load torch."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'timm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_augbench_help_loads_no_torch():
    code = ("import sys; from augbench.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_graph_command_prints_the_parts_and_passes_its_check():
    run = subprocess.run([sys.executable, "-m", "augbench.devtools.imports", "--check"], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout
    assert "engine       -> " in run.stdout and "# import cycles: 0" in run.stdout
