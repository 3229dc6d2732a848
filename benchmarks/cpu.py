"""CPU a process tree has used, read from /proc: what a benchmark's server really cost,
whatever else the machine did meanwhile."""

from __future__ import annotations

import os
from pathlib import Path


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by a process, and by it with all its
    descendants (the bot alone, and with its vision worker processes)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    family = {pid}
    grew = True
    while grew:
        grown = {p for p, parent in parents.items() if parent in family} | family
        grew = len(grown) > len(family)
        family = grown
    return cpu.get(pid, 0.0), sum(cpu.get(p, 0.0) for p in family)
