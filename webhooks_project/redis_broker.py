"""Kombu's Redis transport, except that a channel of a lost connection fails with a connection error.

With Celery 5.7.0 and kombu 5.7.0 a worker exited for good when Redis restarted while it held
unacknowledged messages: "Unrecoverable error: AttributeError("'NoneType' object has no
attribute 'hostname'")". On a lost connection Celery's consumer calls `connection.collect()`,
which detaches the transport from the connection (`transport.client = None`), then closes the
connection again (new in Celery 5.7.0; 5.6.3 only collected). A channel of that connection
that still has work to do then builds a new Redis pool from `transport.client`, and gets an
AttributeError: on the second close (restoring the unacknowledged messages, when the first close
stopped at the dead socket of a BRPOP), and when a task that was running finishes and acks its
message from the old channel. Celery expects connection errors there (it ignores or logs them and
reconnects); an AttributeError stops the worker. Here the channel raises the connection error.

The messages of the lost connection are not lost by this: Redis redelivers unacknowledged ones
after the visibility timeout, and if Redis itself lost them the sweeper re-enqueues the
deliveries from the database.
"""

from kombu.transport import TRANSPORT_ALIASES, redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise RedisConnectionError("this channel's broker connection was lost and has been closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel


def register() -> None:
    """Make `redis://` and `rediss://` broker URLs use this transport."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
