"""ARCHITECTURE.md stays true: its modules exist, and ArviZ stays behind one module."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_mapped_module_exists():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    modules = re.findall(r"^\| `(carestar\.[a-z_]+)` \|", text, flags=re.M)
    files = re.findall(r"`(models/[a-z_/]+\.py)`", text)
    assert len(modules) > 15 and files
    for module in modules:
        path = ROOT / "src" / Path(*module.split(".")).with_suffix(".py")
        assert path.exists(), f"ARCHITECTURE.md maps {module}, but {path} does not exist"
    for file in files:
        assert (ROOT / file).exists(), file


def test_every_module_is_mapped():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    for path in sorted((ROOT / "src" / "carestar").glob("*.py")):
        if path.stem == "__init__":
            continue
        assert f"`carestar.{path.stem}`" in text, f"{path.name} is missing from ARCHITECTURE.md"
    for path in sorted((ROOT / "models").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name == "models/__init__.py":
            continue
        assert f"`{name}`" in text, f"{name} is missing from ARCHITECTURE.md"


def test_models_import_only_public_names_of_other_models():
    """A model package's private helpers stay inside it: ``from models.x import _y`` from
    outside ``models/x`` is refused (tests included)."""
    offenders = []
    pattern = re.compile(r"^\s*from (models(?:\.[a-z_]+)+) import (\([^)]*\)|[^\n]*)", re.M)
    for path in [*(ROOT / "models").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                 *(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "experiments").rglob("*.py")]:
        own = path.relative_to(ROOT).parts[:2]
        for module, names in pattern.findall(path.read_text()):
            if tuple(module.split(".")[:2]) == tuple(p.removesuffix(".py") for p in own):
                continue  # a package's own modules may share its private helpers
            names = re.sub(r"#[^\n]*", "", names).strip("()")
            private = [n.split(" as ")[0].strip() for n in names.split(",")
                       if n.strip().startswith("_")]
            if private:
                offenders.append(f"{path.relative_to(ROOT)}: {module} {private}")
    assert not offenders, f"private names imported across models: {offenders}"


def test_arviz_is_imported_only_by_the_diagnostics_module():
    allowed = {ROOT / "src" / "carestar" / "diagnostics.py"}
    offenders = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "models").rglob("*.py"), ROOT / "run.py"]:
        if path in allowed:
            continue
        if re.search(r"^\s*(import arviz|from arviz)", path.read_text(), flags=re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"ArviZ imported outside carestar.diagnostics: {offenders}"
