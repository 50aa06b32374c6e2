"""The machine a measurement ran on, in one line, for every benchmark table."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine() -> str:
    """"<CPU model>, <n> cores, <OS>" (the CPU model from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"
