"""The supervisor's per-tick process CPU sum, shared with its workers through a file (zerowatt.energy.board)."""

from __future__ import annotations

from pathlib import Path

from zerowatt.energy.board import SeenBoard


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_published_tick_is_read_back_whole(tmp_path: Path) -> None:
    board = SeenBoard(tmp_path / "seen")
    assert board.read() is None  # nothing published yet
    board.publish(1_796_272_586, 0.123456789)
    assert board.read() == (1_796_272_586, 0.123456789)
    board.publish(1_796_272_587, 2.5)
    assert board.read() == (1_796_272_587, 2.5)
    assert [p.name for p in tmp_path.iterdir()] == ["seen"]  # no partial file left behind


def test_a_reader_waits_for_its_tick_and_no_longer(tmp_path: Path) -> None:
    board = SeenBoard(tmp_path / "seen")
    clock = Clock()
    board.publish(9, 1.0)
    published: list[float] = []

    def sleep(seconds: float) -> None:  # the publisher gets to tick 10 after 6 ms
        clock.sleep(seconds)
        if clock.now >= 0.006 and not published:
            board.publish(10, 0.75)
            published.append(clock.now)

    assert board.wait_for(10, 0.25, clock=clock, sleep=sleep) == 0.75
    assert 0.006 <= clock.now < 0.01
    clock.now = 0.0
    assert board.wait_for(11, 0.25, clock=clock, sleep=clock.sleep) is None  # never published
    assert 0.25 <= clock.now < 0.26
    clock.now = 0.0
    assert board.wait_for(9, 0.25, clock=clock, sleep=clock.sleep) is None  # tick 10 replaced it: no wait
    assert clock.now == 0.0


def test_a_foreign_or_broken_file_reads_as_nothing(tmp_path: Path) -> None:
    path = tmp_path / "seen"
    for text in ("", "garbage\n", "1 2 3\n", "x 1.0\n", "5 nan-ish\n"):
        path.write_text(text)
        assert SeenBoard(path).read() is None, text
    path.write_text("5 -1.0\n")
    assert SeenBoard(path).read() == (5, 0.0)  # never a negative CPU time


def test_publishing_where_it_cannot_write_is_not_an_error(tmp_path: Path) -> None:
    board = SeenBoard(tmp_path / "gone" / "seen")  # the state directory was removed at shutdown
    board.publish(1, 1.0)
    assert board.read() is None
