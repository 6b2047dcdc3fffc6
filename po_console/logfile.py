"""Reading a window of a log file without loading it: a run.log may hold millions of lines.

Offsets are byte positions at the start of a line. Reading backwards goes in blocks from
an offset until enough newlines are found, so the cost depends on the window, not the file.
"""

from __future__ import annotations

from pathlib import Path

BLOCK = 64 * 1024


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def lines_before(path: Path, end: int, count: int) -> tuple[list[str], int]:
    """The last `count` lines before byte `end` (a line boundary), and the offset where the first starts."""
    if count <= 0 or end <= 0:
        return [], end
    with path.open("rb") as f:
        pos, data = end, b""
        # count + 1 newlines: the one before the first wanted line marks where it starts.
        while pos > 0 and data.count(b"\n") <= count:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    wanted = data[:-1].split(b"\n")[-count:]
    start = end - sum(len(line) + 1 for line in wanted)
    return [line.decode("utf-8", "replace") for line in wanted], start


def lines_after(path: Path, start: int, count: int) -> tuple[list[str], int]:
    """Up to `count` complete lines from byte `start`, and the offset just after the last."""
    if count <= 0:
        return [], start
    out: list[str] = []
    with path.open("rb") as f:
        f.seek(start)
        pos = start
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a line still being written: show it once it is complete
            out.append(raw[:-1].decode("utf-8", "replace"))
            pos += len(raw)
            if len(out) == count:
                break
    return out, pos


def complete_end(path: Path) -> int:
    """Offset just after the last complete line."""
    end = size(path)
    if end == 0:
        return 0
    with path.open("rb") as f:
        pos = end
        while pos > 0:
            step = min(BLOCK, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            index = chunk.rfind(b"\n")
            if index >= 0:
                return pos - step + index + 1
            pos -= step
    return 0
