"""Time and peak memory of ``posemoe capture`` on long videos made by repeating the sample.

    python benchmarks/scale.py [--minutes 1 10 60] [--markdown FILE] [--json FILE]

Each long video is the bundled clip played over and over: re-encoded once with OpenCV's MPEG-4 Part 2
encoder at the clip's size and frame rate, then repeated by ffmpeg's stream copy (the binary of the
``imageio-ffmpeg`` wheel, a test dependency; no re-encoding, so the 60-minute file, 5.6 GB, takes
seconds rather than half an hour), kept in ``benchmarks/.cache/``. Each capture runs in its own process,
measured from the outside: wall time; peak resident memory of the capture and any processes it starts,
sampled from ``/proc`` five times a second (Linux; elsewhere, and as a check, the largest single
process's peak from ``wait4``). The claim to check: memory stays flat (each reader holds one frame;
per-frame keypoints are a few hundred bytes) and time grows linearly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2

from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.video import probe

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "walk.mp4"
CACHE = ROOT / "benchmarks" / ".cache"


def long_video(minutes: float, cache: Path = CACHE) -> Path:
    """The sample repeated to ``minutes`` of video, cached; returns its path."""
    import imageio_ffmpeg

    info = probe(SAMPLE)
    frames = round(minutes * 60 * info.fps)
    path = cache / f"walk-{frames}.mp4"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    once = cache / "walk-once.mp4"
    if not once.is_file():
        with atomic_output(once) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), info.fps, (info.width, info.height))
            source = cv2.VideoCapture(str(SAMPLE))
            while (image := source.read()[1]) is not None:
                writer.write(image)
            source.release()
            writer.release()
    with atomic_output(path) as tmp:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(once),
                        "-frames:v", str(frames), "-c", "copy", "-f", "mp4", str(tmp)], check=True)
    return path


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` and all its descendants now, in MB (None without /proc)."""
    if not Path("/proc").is_dir():
        return None
    total_kb, todo = 0, [pid]
    while todo:
        proc = Path("/proc") / str(todo.pop())
        try:
            total_kb += int(next(line for line in (proc / "status").read_text().splitlines()
                                 if line.startswith("VmRSS:")).split()[1])
            for task in (proc / "task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):  # it ended meanwhile
            continue
    return total_kb / 1024


def measure(video: Path, out: Path) -> dict:
    """Run ``posemoe capture`` on ``video`` in a child process: seconds, peak memory of all its
    processes together and of the largest one (MB), frames."""
    import tempfile

    command = [sys.executable, "-m", "posemoe", "capture", str(video), "-o", str(out)]
    peak_total = 0.0
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: an hour of progress bars would fill a pipe
        clock = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak_total = max(peak_total, tree_rss_mb(child.pid) or 0.0)
            time.sleep(0.2)
        seconds = time.perf_counter() - clock
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"error: capture of {video} failed:\n{log.read().decode(errors='replace')[-3000:]}")
    largest = usage.ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": max(peak_total, largest), "largest_process_mb": largest,
            "frames": probe(video).frame_count}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    info = probe(SAMPLE)
    rows = []
    for minutes in args.minutes:
        video = long_video(minutes)
        result = measure(video, CACHE / "take.npz")
        (CACHE / "take.npz").unlink(missing_ok=True)
        rows.append({"minutes": minutes, **result, "frames_per_s": result["frames"] / result["seconds"]})
        print(f"{minutes:g} min: {result['seconds']:.0f} s, peak {result['peak_rss_mb']:.0f} MB", file=sys.stderr)
    base = rows[0]
    lines = [f"`posemoe capture` (detection, shared out over one thread per core; tracking, lifting with flip "
             f"averaging, trajectory; take saved) on the "
             f"sample repeated to each length ({info.width}x{info.height} at {info.fps:g} frames/s, encoded once as "
             f"MPEG-4 Part 2 and repeated by stream copy), one process each. Machine: {describe_machine()}.", "",
             "| video | frames | seconds | frames/s | x real time | seconds per minute of video "
             "| peak memory, all processes (MB) | largest process (MB) | memory vs the first row |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['minutes']:g} min | {row['frames']:,} | {row['seconds']:.0f} | {row['frames_per_s']:.1f} | "
                     f"{row['minutes'] * 60 / row['seconds']:.2f} | {row['seconds'] / row['minutes']:.0f} | "
                     f"{row['peak_rss_mb']:.0f} | {row['largest_process_mb']:.0f} | "
                     f"{row['peak_rss_mb'] / base['peak_rss_mb']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Scale: long videos\n\nGenerated by `python benchmarks/scale.py`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
