"""The layers point down only: doors -> albums.sync -> albums.storage -> models and settings.

Read from the source (the imports each module makes), so a new upward import fails here
before it turns into an import cycle or a door's logic inside the engine.
"""

import ast
from pathlib import Path

import pytest

ALBUMS = Path(__file__).resolve().parent.parent / "albums"
# What each layer may import from the project (besides itself).
ALLOWED = {
    "albums.storage": {"albums.conf", "albums.exceptions"},
    "albums.sync": {
        "albums.conf",
        "albums.counts",
        "albums.exceptions",
        "albums.models",
        "albums.storage",
    },
}


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


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer):
    folder = ALBUMS.joinpath(*layer.split(".")[1:])
    upward = {}
    for path in sorted(folder.glob("*.py")):
        for name in project_imports(path, layer):
            if name.startswith(layer) or any(
                name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED[layer]
            ):
                continue
            upward.setdefault(path.name, []).append(name)

    assert upward == {}
