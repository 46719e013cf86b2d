"""The embedded broker of `make run`: kombu's filesystem transport, made safe for several processes.

Kombu's filesystem channel writes a message straight into the queue folder, so
a worker polling that folder can take the file before its bytes are written
and crash on an empty message. Here each message is written under a name the
queue does not match and then renamed into place, which is atomic on POSIX.
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


class Transport(filesystem.Transport):
    Channel = Channel
    driver_type = driver_name = ALIAS


def register() -> None:
    """Make `embedded://` a broker URL kombu understands."""
    TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
