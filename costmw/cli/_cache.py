"""``costmw cache info|clear``: where costmw keeps its files, what they take, and emptying them."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .._paths import cache_root, semantic_cache_path

__all__ = ["app", "clear", "info"]

app = typer.Typer(name="cache", help="Show or empty costmw's cache folder (answers, converted models, exports).",
                  no_args_is_help=True, add_completion=False)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _entries(db: Path) -> int | None:
    """Rows in a semantic cache file, read without writing to it (None when it is not one)."""
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    except sqlite3.Error:
        return None


def _sidecars(db: Path) -> list[Path]:
    """The database file and SQLite's write-ahead log and shared-memory files beside it."""
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


@app.command("info")
def info() -> None:
    """Show the cache folder, the semantic cache file, and what each part takes on disk."""
    console = Console(soft_wrap=True)  # paths stay on one line, to copy
    root, db = cache_root(), semantic_cache_path()
    console.print(f"cache folder:   {root}" + ("" if root.exists() else " (not created yet)"))
    if db.exists():
        count = _entries(db)
        entries = f"{count} entries, " if count is not None else ""
        console.print(f"semantic cache: {db} ({entries}{_human(sum(_size(p) for p in _sidecars(db) if p.exists()))})")
    else:
        console.print(f"semantic cache: {db} (empty)")
    console.print("move it with COSTMW_CACHE_DIR (everything) or COSTMW_SEMANTIC_CACHE (the answers' file)")
    if root.exists():
        table = Table(title="contents")
        table.add_column("item")
        table.add_column("size", justify="right")
        for item in sorted(root.iterdir()):
            table.add_row(item.name + ("/" if item.is_dir() else ""), _human(_size(item)))
        console.print(table)


@app.command("clear")
def clear(
    everything: bool = typer.Option(False, "--all", help="Also remove converted models and exports "
                                                         "(they are rebuilt on next use)."),
) -> None:
    """Remove the semantic cache's stored answers (with --all, everything in the cache folder)."""
    console = Console(soft_wrap=True)  # paths stay on one line, to copy
    root, db = cache_root(), semantic_cache_path()
    removed = [p for p in _sidecars(db) if p.exists()]
    for path in removed:
        path.unlink()
    if everything and root.exists():
        if root.resolve() in (Path(root.anchor).resolve(), Path.home().resolve()):
            raise typer.BadParameter(f"refusing to empty {root}: point COSTMW_CACHE_DIR at a folder of its own")
        for item in list(root.iterdir()):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
            removed.append(item)
    if removed:
        console.print("removed " + ", ".join(str(p) for p in removed))
    else:
        console.print("nothing to remove")
