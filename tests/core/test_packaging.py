"""pyproject's package list and package-data reach every file of costmw/, plugins/ and adapters/.

The wheel itself is built, installed outside the checkout and run by ``make wheel-check``
(part of .ci/run); these checks catch the usual omissions in a second.
"""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _package_folders() -> dict[str, Path]:
    """Every listed package and the folder it is built from."""
    dirs: dict[str, str] = SETUPTOOLS["package-dir"]
    out = {}
    for name in SETUPTOOLS["packages"]:
        root = max((k for k in dirs if name == k or name.startswith(k + ".")), key=len)
        rest = name[len(root):].lstrip(".").replace(".", "/")
        out[name] = REPO / dirs[root] / rest
    return out


def _source_files() -> list[Path]:
    return [p for top in ("costmw", "plugins", "adapters") for p in (REPO / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


def test_every_folder_with_an_init_is_a_listed_package() -> None:
    listed = {folder.resolve() for folder in _package_folders().values()}
    packages = {p.parent.resolve() for p in _source_files() if p.name == "__init__.py"}
    assert not packages - listed, f"add to [tool.setuptools] packages: {sorted(map(str, packages - listed))}"


def test_package_data_covers_every_file_that_is_not_python() -> None:
    folders = _package_folders()
    patterns: dict[str, list[str]] = SETUPTOOLS["package-data"]
    uncovered = []
    for file in (p for p in _source_files() if p.suffix != ".py"):
        owner = max((name for name, folder in folders.items() if file.is_relative_to(folder)),
                    key=lambda name: len(folders[name].parts))
        folder = folders[owner]
        globs = [*patterns.get("*", []), *patterns.get(owner, [])]
        if not any(file in set(folder.glob(g)) for g in globs):
            uncovered.append(str(file.relative_to(REPO)))
    assert not uncovered, f"not in the wheel (add to [tool.setuptools.package-data]): {uncovered}"


def test_the_data_pattern_reaches_nested_folders(tmp_path: Path) -> None:
    """``data/**/*`` takes files at any depth under a package's data/ folder."""
    (tmp_path / "data" / "models" / "v1").mkdir(parents=True)
    for rel in ("data/a.json", "data/models/v1/model.onnx"):
        (tmp_path / rel).write_text("x")
    found = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(SETUPTOOLS["package-data"]["*"][0])}
    assert {"data/a.json", "data/models/v1/model.onnx"} <= found
