"""Build the installable Blender extension: ``python blender_addon/build.py [--out dist] [--platform ...]``.

The extension is this folder (``build.py`` left out) with ``blender_manifest.toml`` made from the
repository's ``addon_manifest.toml``, plus wheels that Blender installs next to it:

- ``posemoe`` itself, built from this checkout (pure Python, with the shipped weights and the ONNX
  model: a few MB);
- SciPy for each platform, because the clean-up and the retargeting run inside Blender, whose Python
  has NumPy but not SciPy.

Detection and lifting need MediaPipe, OpenCV and PyTorch or ONNX Runtime, hundreds of MB per platform:
they are not bundled; the add-on runs them in a worker Python (see :mod:`posemoe.worker`) unless
Blender's Python has them. Blender's own extension tool (``blender_ext.py``, shipped in the ``bpy``
wheel) builds the zip, one per platform, and validates each. Wheels come from the package registry
(pip's cache first), at build time only; the add-on never downloads anything.
"""

from __future__ import annotations

import argparse
import json
import importlib.util
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MANIFEST = ROOT / "addon_manifest.toml"
LEFT_OUT = {"build.py", "__pycache__", "README.md"}

#: Blender's platform names and the wheel platform tags pip should fetch SciPy for.
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64"],
    "linux-arm64": ["manylinux_2_28_aarch64"],
    "windows-x64": ["win_amd64"],
    "windows-arm64": ["win_arm64"],
    "macos-arm64": ["macosx_14_0_arm64"],
    "macos-x64": ["macosx_14_0_x86_64"],
}


def current_platform() -> str:
    """This machine's Blender platform name, e.g. ``linux-x64``."""
    system = {"Linux": "linux", "Windows": "windows", "Darwin": "macos"}.get(platform.system())
    machine = {"x86_64": "x64", "AMD64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(platform.machine())
    if system is None or machine is None:
        raise SystemExit(f"error: no extension build for {platform.system()} {platform.machine()}")
    return f"{system}-{machine}"


def blender_ext() -> Path:
    """Blender's extension command line tool, from the installed ``bpy`` wheel (not imported: it is slow)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("error: the bpy module is not installed; run `pip install -e \".[blender]\"` first")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"error: blender_ext.py not found in {Path(spec.origin).parent}")
    return found[-1]


def pinned(package: str) -> str:
    """``package==version`` as pinned in pyproject.toml, so the extension gets what the tests ran with."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(rf'"({re.escape(package)}==[^"]+)"', text)
    if match is None:
        raise SystemExit(f"error: {package} is not pinned in pyproject.toml")
    return match.group(1)


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {what} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def stage(folder: Path, platforms: list[str]) -> Path:
    """Lay out the extension's source in ``folder``; returns it."""
    for path in HERE.iterdir():
        if path.name in LEFT_OUT or path.suffix == ".pyc":
            continue
        if path.is_dir():
            shutil.copytree(path, folder / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, folder / path.name)
    wheels = folder / "wheels"
    wheels.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
         "building the posemoe wheel")
    for name in platforms:
        tags = [arg for tag in PLATFORMS[name] for arg in ("--platform", tag)]
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
              "--python-version", "3.11", *tags, "-d", str(wheels), pinned("scipy")],
             f"downloading SciPy for {name}")
    listed = [f"./wheels/{p.name}" for p in sorted(wheels.glob("*.whl"))]
    generated = f"# Added by blender_addon/build.py.\nplatforms = {json.dumps(platforms)}\nwheels = {json.dumps(listed)}\n\n"
    text = MANIFEST.read_text()
    first_table = re.search(r"^\[", text, flags=re.MULTILINE)  # top-level keys must precede the tables
    cut = first_table.start() if first_table else len(text)
    (folder / "blender_manifest.toml").write_text(text[:cut] + generated + text[cut:])
    return folder


def build(out: Path, platforms: list[str]) -> list[Path]:
    """Build and validate the extension zip(s) into ``out``; returns their paths."""
    tool = blender_ext()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posemoe-extension-") as tmp:
        source = Path(tmp) / "posemoe_mocap"
        source.mkdir()
        stage(source, platforms)
        before = set(out.glob("*.zip"))
        command = [sys.executable, str(tool), "build", "--source-dir", str(source), "--output-dir", str(out)]
        _run(command + (["--split-platforms"] if len(platforms) > 1 else []), "blender_ext build")
    zips = sorted(set(out.glob("*.zip")) - before) or sorted(out.glob("*.zip"))
    for path in zips:
        _run([sys.executable, str(tool), "validate", str(path)], f"validating {path.name}")
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="dist", help="output folder (default: dist)")
    parser.add_argument("--platform", nargs="+", default=["current"],
                        choices=["current", "all", *PLATFORMS],
                        help="platforms to build for (default: this machine's; 'all': one zip for each)")
    args = parser.parse_args(argv)
    platforms = list(PLATFORMS) if "all" in args.platform else sorted(
        {current_platform() if p == "current" else p for p in args.platform})
    for path in build(Path(args.out), platforms):
        print(f"built and validated {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
