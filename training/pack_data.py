"""Pack the shared Human3.6M files small enough to travel to a GPU machine, and unpack them there.

    python training/pack_data.py pack ../shared/data .devdata      # here: 88 MB -> about 24 MB
    python training/pack_data.py unpack .devdata /tmp/h36m          # there: the original .npz files

The lent GPU machine receives at most 64 MiB with the working tree, and the two files are 88 MB as
shipped. Poses change little from frame to frame, so each int16 sequence is stored as its first frame
and then frame-to-frame differences, LZMA-compressed; the test subjects' detections (S9, S11), which
training never reads, are left out. Unpacking restores every other array bit for bit (int16
differences wrap around and their cumulative sum wraps back). The packed copy is as licence-encumbered
as the original: keep it out of git (the default folder is listed in .git/info/exclude by the caller).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

FILES = ("h36m_3d_17j_mm.npz", "h36m_2d_sh_mpii16_px10.npz")
TEST_SUBJECTS = ("S9", "S11")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def pack(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        data = np.load(source / name)
        detections = "2d" in name
        with zipfile.ZipFile(target / (name + ".xz.zip"), "w", zipfile.ZIP_LZMA) as out:
            for key in data.files:
                array = data[key]
                if detections and key.split("/")[0] in TEST_SUBJECTS:
                    continue
                if array.dtype == np.int16 and array.ndim == 3:
                    delta = array.copy()
                    delta[1:] = np.diff(array, axis=0)  # wraps in int16; cumsum undoes it exactly
                    out.writestr("delta/" + key + ".npy", _npy(delta))
                else:
                    out.writestr("plain/" + key + ".npy", _npy(array))
        print(f"{name}: {(target / (name + '.xz.zip')).stat().st_size / 1e6:.1f} MB")


def unpack(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        arrays = {}
        with zipfile.ZipFile(source / (name + ".xz.zip")) as packed:
            for entry in packed.namelist():
                kind, key = entry.split("/", 1)
                array = np.load(io.BytesIO(packed.read(entry)), allow_pickle=False)
                arrays[key[: -len(".npy")]] = np.cumsum(array, axis=0, dtype=np.int16) if kind == "delta" else array
        np.savez(target / name, **arrays)
        print(f"{target / name}: {len(arrays)} arrays")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    (pack if args.action == "pack" else unpack)(args.source, args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
