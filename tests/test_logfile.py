"""Reading windows of a huge log without loading it."""

from __future__ import annotations

from po_console.logfile import complete_end, lines_after, lines_before


def test_tail_of_a_two_million_line_log_reads_only_the_window(tmp_path, monkeypatch):
    path = tmp_path / "run.log"
    with path.open("w") as f:
        for i in range(2_000_000):
            f.write(f"2026-11-25 10:00:00,000 INFO line {i}\n")
        f.write("a line still being writ")  # no newline yet: not shown
    reads = []
    real_open = type(path).open

    def counting_open(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read

        def read(n=-1):
            data = real_read(n)
            reads.append(len(data))
            return data

        handle.read = read
        return handle

    monkeypatch.setattr(type(path), "open", counting_open)
    end = complete_end(path)
    lines, start = lines_before(path, end, 20)
    assert lines[0].endswith("line 1999980") and lines[-1].endswith("line 1999999")
    assert sum(reads) < 200_000  # a few blocks, not the 80 MB file
    earlier, first = lines_before(path, start, 20)
    assert earlier[-1].endswith("line 1999979")
    again, after = lines_after(path, first, 20)
    assert again == earlier and after == start


def test_short_logs_and_empty_logs(tmp_path):
    path = tmp_path / "run.log"
    path.write_text("")
    assert complete_end(path) == 0 and lines_before(path, 0, 5) == ([], 0)
    path.write_text("one\ntwo\n")
    assert lines_before(path, complete_end(path), 5) == (["one", "two"], 0)
    assert lines_after(path, 0, 1) == (["one"], 4)
