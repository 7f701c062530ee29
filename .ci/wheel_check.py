"""Build the wheel, check it carries every file of costmw/, plugins/ and adapters/, install it with
``[all]`` into a fresh virtual environment outside the checkout, and run ``costmw demo --no-local``
there, offline.

Usage: ``python .ci/wheel_check.py [--torch torch==2.13.0] [--keep DIR]`` (``make wheel-check``).
torch is installed first, pinned, so the ``[all]`` install does not pull a different (CUDA) build;
everything else comes from pip's usual indexes and its local cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# source folder -> where its files sit in the wheel (pyproject's [tool.setuptools.package-dir])
LAYOUT = {"costmw": "costmw", "plugins": "costmw/plugins", "adapters": "costmw/adapters"}


def run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def source_files() -> list[str]:
    """The package files the repository holds, as paths inside the wheel."""
    if (REPO / ".git").exists():
        listed = subprocess.run(["git", "ls-files", *LAYOUT], cwd=REPO, check=True, capture_output=True,
                                text=True).stdout.split()
    else:
        listed = [str(p.relative_to(REPO)) for top in LAYOUT for p in (REPO / top).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    out = []
    for path in listed:
        top, _, rest = path.partition("/")
        out.append(f"{LAYOUT[top]}/{rest}")
    return out


def build_wheel(dist: Path) -> Path:
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)])
    wheels = sorted(dist.glob("costmw-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one costmw wheel in {dist}, found {wheels}")
    return wheels[0]


def check_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        inside = set(zf.namelist())
    missing = [f for f in source_files() if f not in inside]
    if missing:
        raise SystemExit(f"{wheel.name} lacks {len(missing)} file(s) of the checkout, e.g. {missing[:10]}; "
                         "list the package in [tool.setuptools] packages or the file in package-data")
    print(f"{wheel.name}: all {len(source_files())} package files present", flush=True)


def install_and_run_demo(wheel: Path, work: Path, torch: str) -> None:
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q"]
    run([*pip, torch])
    run([*pip, f"{wheel}[all]"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COSTMW_CACHE_DIR=str(work / "cache"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    where = subprocess.run([str(py), "-c", "import costmw, costmw.plugins, costmw.adapters; print(costmw.__file__)"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout.strip()
    if not Path(where).is_relative_to(venv):
        raise SystemExit(f"costmw was imported from {where}, not from the fresh environment {venv}")
    run([str(venv / "bin" / "costmw"), "demo", "--no-local"], cwd=work, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", default=os.environ.get("TORCH", "torch==2.13.0"),
                        help="the torch requirement installed first in the fresh environment")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="costmw-wheel-check-"))
    if work.resolve().is_relative_to(REPO):
        raise SystemExit(f"{work} is inside the checkout; the check must run outside it")
    work.mkdir(parents=True, exist_ok=True)
    try:
        wheel = build_wheel(work / "dist")
        check_contents(wheel)
        install_and_run_demo(wheel, work, args.torch)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print("wheel check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
