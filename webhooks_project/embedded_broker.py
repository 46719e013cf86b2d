"""The embedded broker of `make run`: kombu's filesystem transport, made safe for threads and processes.

Kombu's filesystem channel (kombu 5.7) has three races, each of which loses or tears a message:

- A message is written straight into the queue folder, so a consumer can take the file before
  its bytes are written. Here it is written under a name no queue matches, then renamed into place.
- A binding lives twice: in the process-wide in-memory state, recorded first, and in the
  exchange's table file under the control folder, written after. A second thread of the same
  process sees the binding in memory, skips the file, publishes, reads a table that is still
  missing or empty, and the message is routed to no queue (dropped without an error) or the
  publish fails on the empty file. Here a process-wide lock makes "bound in memory" imply "bound
  in the file", and a lookup also counts this process's own bindings.
- The table file is created in place (opened "wb", so empty, then locked, then written), and
  read under a lock taken after opening, so another process reads it empty or torn, and two
  creators can overwrite each other's rows. Here a writer takes an exclusive lock on a separate
  lock file, writes the whole table under a temporary name and renames it into place: a reader
  always opens one complete version, without a lock.

A consumer claims a message by renaming it within the broker folder (kombu moves it to the
system temporary folder, a copy and a delete when that is another file system, so two consumers
could both get it, or one a torn copy).

A worker that is shutting down stops polling at once (`stop_polling`, on Celery's
worker_shutting_down). Celery's loop for a transport without asynchronous I/O (`synloop`) polls
up to 2 s a turn, and once a warm shutdown is asked it polls one more turn before it stops: a
worker waited about 3 s for nothing after SIGTERM (0.3 s on Redis). What it holds is given back
when its channel closes, as before.
"""

import os
import threading
import uuid
from contextlib import contextmanager
from queue import Empty
from time import monotonic, sleep

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

ALIAS = "embedded"
CLAIMED = ".claimed"  # suffix of a message a consumer has taken; no queue's "<queue>.msg" matches it

# One lock for every channel of this process: kombu's broker state is process-wide too.
_bindings_lock = threading.RLock()
# Set when this process's worker is shutting down: a poll that finds nothing ends at once.
_stopping = threading.Event()


def stop_polling(**kwargs) -> None:
    """This process's worker is shutting down (Celery's worker_shutting_down): end its polls of the broker now."""
    _stopping.set()


class Channel(filesystem.Channel):
    # --- messages ---------------------------------------------------------------

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".partial"  # "<queue>.msg.partial" is not "<queue>.msg": never read
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        """Return the oldest message of `queue`, taken by this consumer alone; raise Empty if none."""
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, name)
            claimed = f"{path}.{os.getpid()}.{threading.get_ident()}{CLAIMED}"
            try:
                os.rename(path, claimed)  # atomic: of two consumers, one wins, the other moves on
            except FileNotFoundError:
                continue
            try:
                with open(claimed, "rb") as f:
                    payload = f.read()
                os.remove(claimed)
            except OSError as exc:
                raise filesystem.ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()

    # --- exchange tables ----------------------------------------------------------

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs):
        # Kombu records the binding in memory, then writes the file: hold every other thread of
        # this process off until both are done (it would skip the file and publish too early).
        with _bindings_lock:
            super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)

    def get_table(self, exchange):
        """Return the exchange's bindings: the file's (every process's) and this process's own."""
        file = self._exchange_file(exchange)
        try:
            rows = [filesystem.exchange_queue_t(*row) for row in loads(bytes_to_str(file.read_bytes()))]
        except FileNotFoundError:
            rows = []
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot open {file}") from exc
        with _bindings_lock:
            own = [meta for meta in self.state.exchanges.get(exchange, {}).get("table", ())
                   if self.state.has_binding(meta[2], exchange, meta[0])]  # not since deleted
        for routing_key, pattern, queue in own:
            row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
            if row not in rows:
                rows.append(row)
        return rows

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_for_update(exchange) as rows:
            if row not in rows:
                rows.insert(0, row)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # Skip kombu's filesystem override (it rewrites the file in place); keep the virtual base's.
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_for_update(exchange) as rows:
            if row in rows:
                rows.remove(row)

    @contextmanager
    def _table_for_update(self, exchange):
        """Yield the exchange's table as a list to change; write it whole when the block ends.

        Writers in every process queue on an exclusive lock of a separate file, and the new table
        is renamed over the old: readers, who take no lock, see one complete version or the other.
        """
        file = self._exchange_file(exchange)
        try:
            self.control_folder.mkdir(parents=True, exist_ok=True)
            with open(file.with_name(file.name + ".lock"), "a") as lock_file:
                filesystem.lock(lock_file, filesystem.LOCK_EX)
                try:
                    try:
                        before = [filesystem.exchange_queue_t(*r) for r in loads(bytes_to_str(file.read_bytes()))]
                    except FileNotFoundError:
                        before = []
                    rows = list(before)
                    yield rows
                    if rows != before:
                        partial = file.with_name(f"{file.name}.{uuid.uuid4().hex}.partial")
                        partial.write_bytes(str_to_bytes(dumps(rows)))
                        os.replace(partial, file)
                finally:
                    filesystem.unlock(lock_file)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot update {file}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
    driver_type = driver_name = ALIAS

    def drain_events(self, connection, timeout=None):
        """Deliver one message, polling every polling_interval up to `timeout` seconds (kombu's virtual
        transport's loop); raise socket.timeout (TimeoutError) as soon as a poll finds nothing once the
        worker stops."""
        start = monotonic()
        interval = self.polling_interval
        if timeout and interval and interval > timeout:
            interval = timeout
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                if _stopping.is_set() or (timeout is not None and monotonic() - start >= timeout):
                    raise TimeoutError() from None  # socket.timeout, which Celery and kombu catch
                if interval is not None:
                    sleep(interval)

    @property
    def default_connection_params(self):
        # No server, so no host name: without one to default to, kombu does not warn that none was given.
        return {"port": self.default_port}


def register() -> None:
    """Make `embedded://` a broker URL kombu understands."""
    TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
