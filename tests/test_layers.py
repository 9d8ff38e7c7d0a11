"""The layers point down only: doors -> albums.sync -> albums.renditions -> albums.storage ->
models and settings.

Inside albums.sync, its subpackages are layers too, lowest first in SYNC_LAYERS: each may
import those before it in the list, never one after. Read from the source (the imports each
module makes), so a new upward import fails here before it turns into an import cycle or a
door's logic inside the engine.
"""

import ast
from pathlib import Path

import pytest

ALBUMS = Path(__file__).resolve().parent.parent / "albums"
# What each layer may import from the project (besides itself).
ALLOWED = {
    "albums.storage": {"albums.conf", "albums.exceptions"},
    "albums.renditions": {"albums.conf", "albums.exceptions", "albums.storage"},
    "albums.sync": {
        "albums.conf",
        "albums.counts",
        "albums.exceptions",
        "albums.models",
        "albums.renditions",
        "albums.storage",
    },
}
# albums.sync's own layers, lowest first (docs/ARCHITECTURE.md says what each decides).
SYNC_LAYERS = ["outcome", "library", "bucket", "records", "engine", "recovery", "usecases"]


def project_imports(path: Path, package: str) -> set[str]:
    """The albums.* modules `path` (a module of `package`) imports, resolved."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "albums"}


def modules_of(folder: Path, package: str):
    """Every module below `folder` (the package `package`), with the package it belongs to."""
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).parts[:-1]
        yield path, ".".join([package, *parts])


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def sync_layer(name: str) -> int | None:
    """The place of a module of albums.sync in SYNC_LAYERS (None for albums.sync itself)."""
    parts = name.split(".")
    return SYNC_LAYERS.index(parts[2]) if len(parts) > 2 and parts[2] in SYNC_LAYERS else None


def upward_imports(albums: Path, layer: str) -> dict[str, list[str]]:
    """The imports of `layer`'s modules that go up: out of what ALLOWED gives the layer, or,
    inside albums.sync, from a subpackage to one above it in SYNC_LAYERS."""
    folder = albums.joinpath(*layer.split(".")[1:])
    upward = {}
    for path, package in modules_of(folder, layer):
        for name in project_imports(path, package):
            if within(name, layer):
                below = sync_layer(package)
                target = sync_layer(name)
                if below is None or target is None or target <= below:
                    continue
            elif any(within(name, allowed) for allowed in ALLOWED[layer]):
                continue
            upward.setdefault(str(path.relative_to(albums)), []).append(name)
    return upward


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer):
    assert upward_imports(ALBUMS, layer) == {}


def test_every_subpackage_of_the_sync_has_its_place_in_the_layers():
    subpackages = {p.parent.name for p in (ALBUMS / "sync").glob("*/__init__.py")}
    assert subpackages == set(SYNC_LAYERS)


@pytest.mark.parametrize(
    ("module", "line", "upward"),
    [
        (
            "sync/engine/decide.py",
            "from ..usecases.many import ManyAlbums",
            "albums.sync.usecases.many",
        ),
        (
            "sync/library/scan.py",
            "from albums.sync.records import runs",
            "albums.sync.records",
        ),
        ("sync/outcome/result.py", "from ... import admin", "albums.admin"),
        ("storage/bucket.py", "from ..sync import sync_album", "albums.sync"),
    ],
)
def test_an_upward_import_is_caught(tmp_path, module, line, upward):
    """The check itself: one import that goes up, in a copy of the tree, is named."""
    albums = tmp_path / "albums"
    for path in ALBUMS.rglob("*.py"):
        copy = albums / path.relative_to(ALBUMS)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    target = albums / module
    target.write_text(target.read_text() + f"\n{line}\n")

    layer = "albums.storage" if module.startswith("storage/") else "albums.sync"
    assert upward_imports(albums, layer) == {module: [upward]}
