"""The embedded default's file broker: every message is delivered whole and exactly once."""

from __future__ import annotations

import multiprocessing
import os
from queue import Empty

from kombu import Connection

from studio import broker

MESSAGES = 600
CONSUMERS = 3


def _connection(folder) -> Connection:
    broker.install()
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    for path in options.values():
        os.makedirs(path, exist_ok=True)
    return Connection("filesystem://", transport_options=options)


def _consume(folder, stop_after: int, found) -> None:
    with _connection(folder) as connection:
        channel = connection.default_channel
        idle = 0
        while idle < 2000:
            try:
                found.put(channel._get("work")["n"])
                idle = 0
            except Empty:
                idle += 1
                if found.qsize() >= stop_after:
                    return


def test_filesystem_means_the_safe_transport(tmp_path):
    with _connection(tmp_path) as connection:
        assert isinstance(connection.default_channel, broker.Channel)


def test_a_message_appears_only_when_it_is_whole(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(source, target):
        assert not os.path.exists(target), "a consumer could already see the message"
        assert source.endswith(broker.PARTIAL) and os.path.getsize(source) > 0
        seen.append(target)
        real_replace(source, target)

    monkeypatch.setattr(broker.os, "replace", replace)
    with _connection(tmp_path) as connection:
        channel = connection.default_channel
        channel._put("work", {"n": 1})
        assert channel._get("work") == {"n": 1}
    assert seen and seen[0].endswith(".work.msg")
    assert os.listdir(tmp_path / "queue") == []


def test_concurrent_consumers_get_each_message_once_and_whole(tmp_path):
    context = multiprocessing.get_context("spawn")
    found = context.Queue()
    consumers = [context.Process(target=_consume, args=(tmp_path, MESSAGES, found)) for _ in range(CONSUMERS)]
    for process in consumers:
        process.start()
    with _connection(tmp_path) as connection:
        channel = connection.default_channel
        for n in range(MESSAGES):
            channel._put("work", {"n": n, "padding": "x" * 2000})  # big enough to be caught half-written
    received = []
    while len(received) < MESSAGES:
        try:
            received.append(found.get(timeout=30))
        except Empty:
            break
    for process in consumers:
        process.join(timeout=30)
        assert process.exitcode == 0, "a consumer failed (a message it could not decode?)"
    assert sorted(received) == list(range(MESSAGES))


def _bind(folder, n: int) -> None:
    with _connection(folder) as connection:
        connection.default_channel._queue_bind("jobs", f"key-{n}", "", f"queue-{n}")


def test_workers_starting_together_bind_their_queues_without_reading_a_half_written_table(tmp_path):
    context = multiprocessing.get_context("spawn")
    binders = [context.Process(target=_bind, args=(tmp_path, n)) for n in range(8)]
    for process in binders:
        process.start()
    for process in binders:
        process.join(timeout=60)
        assert process.exitcode == 0
    with _connection(tmp_path) as connection:
        table = connection.default_channel.get_table("jobs")
    assert sorted(entry.queue for entry in table) == [f"queue-{n}" for n in range(8)]
