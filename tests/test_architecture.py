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


def test_arviz_is_imported_only_by_the_diagnostics_module():
    allowed = {ROOT / "src" / "carestar" / "diagnostics.py"}
    offenders = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "models").rglob("*.py"), ROOT / "run.py"]:
        if path in allowed:
            continue
        if re.search(r"^\s*(import arviz|from arviz)", path.read_text(), flags=re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"ArviZ imported outside carestar.diagnostics: {offenders}"
