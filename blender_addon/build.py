"""Build the installable Blender extension: ``python blender_addon/build.py [--out dist] [--platform ...]``.

The extension is this folder (``build.py`` left out) with ``blender_manifest.toml`` made from the
repository's ``addon_manifest.toml``, plus the wheels Blender installs beside it, so that a capture
runs inside Blender with nothing else installed:

- ``posemoe`` itself, built from this checkout (pure Python, with the shipped weights, their ONNX
  export and BlazePose's landmark model: a few MB);
- ONNX Runtime (BlazePose's two models and the lifting, on the CPU), OpenCV (decoding the video) and
  SciPy (clean-up and retargeting). OpenCV is the headless build of the version the tests pin: Blender
  installs wheels without resolving dependencies, and the GUI build would bring Qt into Blender's
  process.

All of them import against the NumPy that Blender 4.2 to 5.0 bundle (1.24.3 in 4.2 and 4.3, 1.26 from
4.4); ``benchmarks/blender.py --blender VERSION --numpy VERSION`` captures with the zip in such a Blender.
Blender's own extension tool (``blender_ext.py``, shipped in the ``bpy`` wheel) builds one zip per
platform and validates each. Wheels come from the package registry (pip's cache first), at build time
only; the add-on never downloads anything. A GPU is the one thing the zip does not bring: for CUDA
lifting the add-on's preferences name a worker Python with PyTorch (:mod:`posemoe.worker`).
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
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MANIFEST = ROOT / "addon_manifest.toml"
LEFT_OUT = {"build.py", "__pycache__", "README.md"}

#: Blender's platform names and the wheel platform tags pip may take for each. (pip widens a macOS tag
#: to older macOS versions by itself, not a manylinux one.)
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "linux-arm64": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64"],
}
#: Platforms Blender runs on that the zip cannot serve, and why (the wheels PyPI lacks): there the
#: capture needs a worker Python.
UNSERVED = {
    "windows-arm64": "OpenCV 4.11 and SciPy 1.13 have no Windows arm64 wheels",
    "macos-x64": "ONNX Runtime 1.32 has no Intel macOS wheel",
}
#: The wheels a capture needs inside Blender: pinned in pyproject.toml, as the tests run them ...
FROM_PYPROJECT = ["onnxruntime"]
#: ... and pinned here. The tests' OpenCV is opencv-contrib-python, with a GUI (MediaPipe, the tests'
#: reference, requires that build).
#: Their SciPy (1.17) needs NumPy >= 1.26.4, which Blender 4.2 and 4.3 lack (they bundle 1.24.3; 4.4
#: to 5.0 bundle 1.26): 1.13.1 is the newest that imports against both and has what we use.
PINNED_HERE = ["scipy==1.13.1", "opencv-python-headless==4.11.0.86"]


def current_platform() -> str:
    """This machine's Blender platform name, e.g. ``linux-x64``."""
    system = {"Linux": "linux", "Windows": "windows", "Darwin": "macos"}.get(platform.system())
    machine = {"x86_64": "x64", "AMD64": "x64", "arm64": "arm64", "aarch64": "arm64"}.get(platform.machine())
    if system is None or machine is None:
        raise SystemExit(f"error: no extension build for {platform.system()} {platform.machine()}")
    name = f"{system}-{machine}"
    if name in UNSERVED:
        raise SystemExit(f"error: no extension for {name}: {UNSERVED[name]}; capture there through a worker Python")
    return name


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


def _without_training(wheel: Path) -> None:
    """Drop the ``training`` package from the posemoe wheel: the repository installs it beside posemoe so
    its scripts import without path edits, but a capture never uses it and Blender's shared
    site-packages should not get a top-level package of that name."""
    kept = wheel.with_name(wheel.name + ".part")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename.startswith("training/"):
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"training/"))
            elif item.filename.endswith(".dist-info/top_level.txt"):
                data = b"".join(line for line in data.splitlines(keepends=True) if line.strip() != b"training")
            target.writestr(item, data)
    kept.replace(wheel)


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
    _without_training(next(wheels.glob("posemoe-*.whl")))
    requirements = [pinned(name) for name in FROM_PYPROJECT] + PINNED_HERE
    for name in platforms:
        tags = [arg for tag in PLATFORMS[name] for arg in ("--platform", tag)]
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
              "--python-version", "3.11", *tags, "-d", str(wheels), *requirements],
             f"downloading the wheels for {name}")
    for wheel in wheels.glob("*-cp3*-abi3-*.whl"):
        # Stable-ABI wheels say the oldest Python they run on (cp37); Blender 4.3.0 takes that for the
        # only one and skips them (later releases do not). Every Blender from 4.2 to 5.0 has Python
        # 3.11, so name them for it.
        name, version, _, rest = wheel.name.split("-", 3)
        wheel.rename(wheel.with_name(f"{name}-{version}-cp311-{rest}"))
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
                        choices=["current", "all", *PLATFORMS, *UNSERVED],
                        help="platforms to build for (default: this machine's; 'all': one zip for each)")
    args = parser.parse_args(argv)
    for name in args.platform:
        if name in UNSERVED:
            parser.error(f"no extension for {name}: {UNSERVED[name]}; capture there through a worker Python")
    platforms = list(PLATFORMS) if "all" in args.platform else sorted(
        {current_platform() if p == "current" else p for p in args.platform})
    for path in build(Path(args.out), platforms):
        print(f"built and validated {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
