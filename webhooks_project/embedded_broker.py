"""The embedded broker of `make run`: kombu's filesystem transport, made safe for several processes.

Kombu's filesystem channel writes a message straight into the queue folder, so
a worker polling that folder can take the file before its bytes are written
and crash on an empty message. Here each message is written under a name the
queue does not match and then renamed into place, which is atomic on POSIX.
The same holds for an exchange's routing table in the control folder, which
kombu creates empty and then fills.
"""

import os
import uuid
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "embedded"


class Channel(filesystem.Channel):
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


    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        if not file.exists():
            # Kombu creates an exchange's table in place (open "wb", then lock, then write): a
            # process publishing in between reads it empty and fails (seen in the suite). Create
            # it whole under another name and link it into place; whoever loses the race updates it.
            self.control_folder.mkdir(exist_ok=True)
            partial = file.with_name(f"{file.name}.{uuid.uuid4().hex}.partial")
            row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
            partial.write_bytes(str_to_bytes(dumps([row])))
            try:
                os.link(partial, file)
                return
            except FileExistsError:
                pass
            finally:
                partial.unlink(missing_ok=True)
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel
    driver_type = driver_name = ALIAS


def register() -> None:
    """Make `embedded://` a broker URL kombu understands."""
    TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
