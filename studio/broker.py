"""The embedded default's broker: kombu's file transport, made safe for several processes.

kombu's `filesystem://` transport creates a message's file and then writes it, while a
consumer may already have taken the empty file: under load a message is read as nothing,
fails to decode and is lost (seen in bench/fanout.py with four worker processes). Its
consumer also moves a taken file to the system temp folder with `shutil.move`, which
copies instead of renaming when that folder is on another file system, so two consumers
could both deliver one message. And two workers starting together could read an exchange's
binding table while the other had created it but not yet written it, and the worker that read
nothing died at start ("Unrecoverable error: JSONDecodeError").

Here a message is written under a name no consumer looks at and renamed into place when
complete, and a consumer takes it with one `os.rename` into the processed folder on the
same file system: only one consumer wins, and what it reads is whole. Binding tables are
changed under one lock and replaced whole, so a reader sees the old table or the new one.
`studio.celery`
installs this transport under the `filesystem` alias, so `CELERY_BROKER_URL=filesystem://`
means this class.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

PARTIAL = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL  # ends in ".part": no consumer picks it up
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        taken_folder = self.processed_folder
        os.makedirs(taken_folder, exist_ok=True)
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            taken = os.path.join(taken_folder, f"{os.getpid()}-{name}")
            try:
                os.rename(os.path.join(self.data_folder_in, name), taken)
            except FileNotFoundError:
                continue  # another consumer took it first
            try:
                with open(taken, "rb") as handle:
                    payload = handle.read()
                if not self.store_processed:
                    os.remove(taken)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {taken!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()

    def get_table(self, exchange):
        table = self._exchange_file(exchange)
        try:
            text = table.read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {table}") from exc
        return [filesystem.exchange_queue_t(*entry) for entry in loads(text)] if text.strip() else []

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        table = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with open(self.control_folder / "bindings.lock", "a") as guard:
                fcntl.flock(guard, fcntl.LOCK_EX)  # released when the file closes
                entries = self.get_table(exchange)
                if entry not in entries:
                    entries.insert(0, entry)
                    partial = table.with_name(f"{table.name}.{os.getpid()}{PARTIAL}")
                    partial.write_bytes(str_to_bytes(dumps(entries)))
                    os.replace(partial, table)
        except OSError as exc:
            raise ChannelError(f"Cannot bind {queue!r} to {exchange!r} in {table}") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Make `filesystem://` mean this transport in this process."""
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES["filesystem"] = "studio.broker:Transport"
