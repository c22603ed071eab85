"""Imports point one way: base <- stages <- tools <- CLI (docs/architecture.md).

- base: every `brandmon` module that is not one of the below (settings, metrics, Kafka helpers,
  web, broker, delivery, the contracts in brandmon.contracts, ...).
- stages: brandmon.stream, brandmon.alerts, brandmon.model_export. A stage imports the base and
  itself, never another stage: what two stages share is a contract, and lives in the base.
- tools: brandmon.tools (demo, bench, simulator, scenarios, tiny model, fake classifier).
- CLI: brandmon.cli and each stage's `cli` (and `__main__`) module, which wire it all.

Every import counts, also one inside a function (the CLI imports lazily) or under
TYPE_CHECKING. The checker reads the source with `ast` and imports nothing.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "brandmon"
STAGES = ("stream", "alerts", "model_export")
#: Lowest first: a module may import its own layer and the ones before it.
LAYERS = ("base", "stage", "tool", "cli")
#: Modules of a stage that belong to the CLI layer.
CLI_MODULES = ("cli", "__main__")


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def layer_of(module: str) -> tuple[str, str | None]:
    """(layer, stage name or None) of a `brandmon...` module."""
    parts = module.split(".")
    if module == "brandmon.cli":
        return "cli", None
    if len(parts) > 1 and parts[1] == "tools":
        return "tool", None
    if len(parts) > 1 and parts[1] in STAGES:
        if len(parts) > 2 and parts[2] in CLI_MODULES:
            return "cli", None
        return "stage", parts[1]
    return "base", None


def modules_in(package: Path) -> dict[str, Path]:
    """Every module below `package` by dotted name, through the symlinks to the stages."""
    found: dict[str, Path] = {}
    for folder, _, files in os.walk(package, followlinks=True):
        rel = Path(folder).relative_to(package.parent)
        for name in files:
            if name.endswith(".py"):
                stem = name.removesuffix(".py")
                parts = rel.parts if stem == "__init__" else (*rel.parts, stem)
                found[".".join(parts)] = Path(folder) / name
    return found


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones resolved; `from pkg import
    name` counts as importing pkg.name when that is a module."""
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((node.lineno, child if child in known else base))
    return found


def check(package: Path) -> list[Violation]:
    """Every import below `package` that breaks the layer rules."""
    modules = modules_in(package)
    violations: list[Violation] = []
    for module, path in sorted(modules.items()):
        layer, stage = layer_of(module)
        for line, imported in sorted(set(imports_of(module, path, set(modules)))):
            top = imported.split(".")[0]
            if top in STAGES or top == "tools":
                why = f"no top-level {top!r} is installed: import brandmon.{imported}"
                violations.append(Violation(module, line, imported, why))
                continue
            if top != "brandmon" or imported == "brandmon":
                continue
            their_layer, their_stage = layer_of(imported)
            if LAYERS.index(their_layer) > LAYERS.index(layer):
                why = f"the {layer} layer must not import the {their_layer} layer"
                violations.append(Violation(module, line, imported, why))
            elif layer == "stage" and their_layer == "stage" and their_stage != stage:
                why = f"stage {stage} must not import stage {their_stage}; share via the base"
                violations.append(Violation(module, line, imported, why))
    return violations


def test_brandmon_imports_point_one_way() -> None:
    violations = check(PACKAGE)
    assert not violations, "\n".join(map(str, violations))


def test_every_layer_has_modules() -> None:
    layers = {layer_of(module)[0] for module in modules_in(PACKAGE)}
    assert layers == set(LAYERS)


# ------------------------------------------------------------------ the checker itself


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "brandmon"


def test_the_checker_catches_each_kind_of_violation(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "brandmon/__init__.py": "",
            "brandmon/cli.py": "from brandmon.stream import cli\nfrom brandmon.tools import demo\n",
            "brandmon/settings.py": "from brandmon.alerts.config import AlertSettings\n",
            "brandmon/contracts/__init__.py": "",
            "brandmon/contracts/posts.py": "import pydantic\n",
            "brandmon/stream/__init__.py": "",
            "brandmon/stream/cli.py": "def demo():\n    from brandmon.tools.demo import run\n",
            "brandmon/stream/worker.py": (
                "from brandmon.contracts.posts import Post\n"
                "from . import cli\n"
                "from .schema import ScoredPost\n"
            ),
            "brandmon/stream/schema.py": "from brandmon.settings import Settings\n",
            "brandmon/alerts/__init__.py": "",
            "brandmon/alerts/config.py": "",
            "brandmon/alerts/engine.py": (
                "from brandmon.stream.schema import ScoredPost\ndef f():\n    import stream.app\n"
            ),
            "brandmon/tools/__init__.py": "",
            "brandmon/tools/demo.py": (
                "from brandmon import cli\nfrom brandmon.stream import worker\n"
            ),
        },
    )
    found = {(v.module, v.line, v.imported) for v in check(package)}
    assert found == {
        ("brandmon.settings", 1, "brandmon.alerts.config"),  # base -> stage
        ("brandmon.stream.worker", 2, "brandmon.stream.cli"),  # stage -> CLI (relative)
        ("brandmon.alerts.engine", 1, "brandmon.stream.schema"),  # stage -> other stage
        ("brandmon.alerts.engine", 3, "stream.app"),  # the generic top-level name
        ("brandmon.tools.demo", 1, "brandmon.cli"),  # tool -> CLI
    }


def test_the_checker_passes_a_tree_that_keeps_the_rules(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "brandmon/__init__.py": "",
            "brandmon/settings.py": "import os\nfrom brandmon import contracts\n",
            "brandmon/contracts/__init__.py": "",
            "brandmon/stream/__init__.py": "from brandmon.stream import scoring\n",
            "brandmon/stream/scoring.py": "from ..contracts import posts\nimport brandmon\n",
            "brandmon/model_export/__init__.py": "",
            "brandmon/model_export/__main__.py": "from brandmon.model_export.cli import main\n",
            "brandmon/model_export/cli.py": "from brandmon.stream import scoring\n",
            "brandmon/tools/__init__.py": "",
            "brandmon/tools/bench.py": "from brandmon.stream.scoring import x\n",
        },
    )
    assert check(package) == []
