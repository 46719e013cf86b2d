"""Waking an endpoint's sender: at most one waiting message per endpoint, and the sweeper behind it.

A sender sends every due delivery of its endpoint (delivery.sender), so one
message per endpoint is enough while a sender is queued or running: the
endpoint is then *awake*, and an EndpointWake row says so.
- On commit, a caller makes the endpoints of its deliveries awake and
  publishes a message only for those that were not (`endpoints_awaken`).
- The sender that message starts (the row's *holder*) keeps the row fresh
  while it runs, and deletes it right before its last look for due work
  (`endpoint_sleep`): a delivery committed before that delete is found by that
  look, one committed after it awakens the endpoint again and publishes.
- A holder that finds every slot of its endpoint or organisation taken marks
  the row *waiting*, then takes once more (delivery.sender: a slot freed before
  the mark is found so); whoever frees a slot of that organisation after the
  mark wakes the waiting endpoints (`endpoints_wake_waiting`).
- A helper (a second sender for a backlog, `endpoint_help`) never touches the row.
- A holder in a worker that has sent what was due *listens* before it lets go
  (`endpoint_listen`): it marks its row listening, looks once more, and waits up to
  LISTEN_SECONDS for a wake on its endpoint's channel (a queue of the broker, through
  kombu, on both brokers). The first caller that finds the row listening clears the mark
  and sends one wake (later callers send nothing); the holder, woken, starts again with no
  Celery task and no new wake row. A steady trickle so costs one sender, not one per event.
  A wake lost (broker restarted) or left over only delays or costs one empty look: the
  holder's wait ends after LISTEN_SECONDS and its last look finds what committed before.

The database is the source of truth, so a lost message (broker restarted
empty, worker killed) only delays: the sweeper (every SWEEP_INTERVAL, from
Celery beat) deletes rows older than a lease (their sender died) and wakes
every endpoint that has sendable work and no row (delivery.states.sendable:
due, and let through by its breaker).
"""

import enum
import logging
import threading
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from kombu import Exchange, Queue

from delivery import metrics, slots, states
from delivery.compiled import Compiled, Insert, Param, any_equal
from delivery.models import Delivery, EndpointWake
from subscriptions.models import TIMEOUT_MAX, Subscription

logger = logging.getLogger(__name__)

SEND_TASK = "delivery.tasks.send_endpoint"
SWEEP_INTERVAL = 2.0  # seconds between sweeps (CELERY_BEAT_SCHEDULE in settings says the same)
SWEEP_MAX = 1000  # endpoints woken by one sweep at most; the next sweep takes the rest
# A holder that sent what was due listens this long for a wake before it lets go of the endpoint: longer
# than the gap between a steady trickle's events (0.05 s at 20/s), far shorter than a lease (the row is
# refreshed each time it listens); a worker's warm shutdown wakes its listeners (listening_stop).
LISTEN_SECONDS = 1.0
# Listening holds a thread of the worker's pool: at most this many listen at once in one process (half the
# default pool of 8, so a process always has threads for new messages); a holder that finds none free
# lets go as before.
LISTENERS_PER_PROCESS = 4
_TIME = models.DateTimeField()
_ID = EndpointWake._meta.pk
_TIMEOUT = Subscription._meta.get_field("timeout_seconds")
_ORGANISATION = Subscription._meta.get_field("organisation").target_field


def sweep_grace(timeout: float | None = None) -> float:
    """Return the age after which a wake row means a dead sender or a lost message, for an endpoint whose
    requests last `timeout` seconds at most (None: WEBHOOKS_TIMEOUT).

    A running holder refreshes its row whenever it renews its lease, so the row
    is never older than one lease while it runs.
    """
    return slots.lease_seconds(timeout)


def _stale() -> Q:
    """The wake rows older than their endpoint's grace: one lease of its timeout (a longer one than the
    setting's gets the grace of the longest a subscription may have). Params: `before` (now less the
    setting's grace), `before_longest` (now less the longest's), `timeout` (WEBHOOKS_TIMEOUT)."""
    longer = Q(subscription__timeout_seconds__gt=Param("timeout", _TIMEOUT))
    return ((Q(since__lt=Param("before", _TIME)) & ~longer) | Q(since__lt=Param("before_longest", _TIME)))


_AWAKEN = Compiled(lambda n: Insert(
    EndpointWake, ["subscription", "since", "waiting", "listening"],
    [EndpointWake(subscription_id=Param("ids", _ID, i), since=Param("now", _TIME), waiting=False, listening=False)
     for i in range(n)],
    # An endpoint already awake whose holder listens loses the mark and is returned too (its `since` is the
    # holder's, not this statement's): the one caller that takes the mark wakes it. Rows not listening are left.
    conflict=("subscription",), clear="listening", returning=("subscription", "since")))
_SLEEP = Compiled(lambda: EndpointWake.objects.filter(subscription_id=Param("id", _ID)), delete=True)
_KEEP = Compiled(lambda: (EndpointWake.objects.filter(subscription_id=Param("id", _ID)),
                          {"since": Param("now", _TIME), "waiting": False}), update=True)
_WAIT = Compiled(lambda: (EndpointWake.objects.filter(subscription_id=Param("id", _ID)),
                          {"since": Param("now", _TIME), "waiting": True, "listening": False}), update=True)
_LISTEN = Compiled(lambda: (EndpointWake.objects.filter(subscription_id=Param("id", _ID)),
                            {"since": Param("now", _TIME), "waiting": False, "listening": True}), update=True)
_WAITING = Compiled(lambda: EndpointWake.objects.filter(
    waiting=True, subscription__organisation_id=Param("organisation_id", _ORGANISATION))
    .values_list("subscription_id")[:SWEEP_MAX])
# The sweeper's two statements, every SWEEP_INTERVAL in every worker: compiled like the sender's (building the
# due rule's query each time cost about 4 ms of CPU a sweep).
_SWEEP_STALE = Compiled(lambda: EndpointWake.objects.filter(_stale()), delete=True)
_SWEEP_DUE = Compiled(lambda: Delivery.objects.filter(states.sendable(Param("now", _TIME)),
                                                      subscription__endpoint_wake__isnull=True)
                      .values_list("subscription_id").distinct()[:SWEEP_MAX])
_UNWAIT = Compiled(lambda n: (EndpointWake.objects.filter(any_equal("subscription_id", "ids", _ID, n), waiting=True),
                              {"since": Param("now", _TIME), "waiting": False}), update=True)


def _publish(subscription_id, *, helper: bool = False, countdown: float | None = None) -> bool:
    """Send one message for the endpoint (to run in `countdown` seconds); return False (and log) if the broker
    refused it."""
    try:
        current_app.send_task(SEND_TASK, args=[str(subscription_id)], kwargs={"helper": True} if helper else None,
                              retry=False, countdown=countdown)
    except Exception:  # noqa: BLE001 - any broker error: the sweeper takes over
        logger.warning("Broker unavailable; endpoint %s left for the sweeper", subscription_id)
        return False
    return True


def endpoints_awaken(subscription_ids) -> int:
    """Make these endpoints awake and publish a message for each that was not; return how many were published.

    One statement whatever the number of endpoints. A broker that is down loses
    nothing: the row is removed again, the deliveries stay due, and the sweeper
    wakes the endpoint once it can.
    """
    ids = list(dict.fromkeys(subscription_ids))
    if not ids:
        return 0
    created = _awaken(ids)
    published = 0
    for subscription_id in created:
        if _publish(subscription_id):
            published += 1
        else:
            endpoint_sleep(subscription_id)
    return published


def _awaken(ids: list) -> list:
    """Make these endpoints awake, in one statement; wake the listening holders among those already awake;
    return the endpoints that were not awake (their rows are new).

    A row is new when its `since` is this statement's time. (Were a listening holder's own
    time ever the same to the microsecond, that endpoint would get a message instead of a
    wake: one more sender, which the slots and claims allow.)
    """
    now = timezone.now()
    created = []
    for subscription_id, since in _AWAKEN.run((len(ids),), ids=ids, now=now):
        if since == now:
            created.append(subscription_id)
        else:
            _wake(subscription_id)
    return created


def endpoint_awaken(subscription_id) -> bool:
    """Make the endpoint awake for the caller itself (a holder about to look again); return False if it already was."""
    return bool(_awaken([subscription_id]))


def endpoint_help(subscription_id) -> None:
    """Publish one more message for an endpoint whose sender has a backlog (the wake row is not its business)."""
    _publish(subscription_id, helper=True)


def endpoint_keep_awake(subscription_id) -> None:
    """Refresh the endpoint's wake row (the holder, while it runs): the sweeper leaves it alone."""
    if not _KEEP.run(id=subscription_id, now=timezone.now()):
        endpoint_awaken(subscription_id)


def endpoint_sleep(subscription_id) -> None:
    """Delete the endpoint's wake row, right before the holder's last look: later deliveries publish again."""
    _SLEEP.run(id=subscription_id)


def endpoint_resume_in(subscription_id, seconds: float) -> None:
    """Keep the endpoint awake and publish its next sender to start in `seconds` (the holder of a paced endpoint
    that must wait longer than it may in its thread: no thread waits meanwhile, delivery.pacing).

    A message that is lost only delays: the row grows stale and the sweeper wakes the endpoint.
    """
    endpoint_keep_awake(subscription_id)
    if not _publish(subscription_id, countdown=seconds):
        endpoint_sleep(subscription_id)


def endpoint_wait_for_slot(subscription_id) -> None:
    """Leave the endpoint's wake row marked waiting: every slot it needs is taken (woken when one is freed)."""
    if not _WAIT.run(id=subscription_id, now=timezone.now()):
        endpoint_awaken(subscription_id)
        _WAIT.run(id=subscription_id, now=timezone.now())


def endpoint_stop_waiting(subscription_id) -> bool:
    """Unmark the endpoint's row waiting (its holder took a slot after all); return False if a sender that freed
    a slot had unmarked it first: that sender published the endpoint's next sender."""
    return bool(_UNWAIT.run((1,), ids=[subscription_id], now=timezone.now()))


def endpoints_wake_waiting(*, organisation_id) -> int:
    """Publish a message for each endpoint of the organisation waiting for a slot; return how many.

    Called by every sender that frees its slots: one indexed read when none waits.
    """
    waiting = [row[0] for row in _WAITING.run(organisation_id=organisation_id)]
    if not waiting:
        return 0
    _UNWAIT.run((len(waiting),), ids=waiting, now=timezone.now())
    return sum(_publish(subscription_id) for subscription_id in waiting)


def endpoints_sweep() -> int:
    """Wake every endpoint with due work whose message is missing or stale; return how many.

    Stale rows (older than sweep_grace(): their sender died, or their message
    was lost) are deleted first. An endpoint whose breaker lets only test sends
    go is woken only for a due test send.
    """
    now = timezone.now()
    _SWEEP_STALE.run(before=now - timedelta(seconds=sweep_grace()), timeout=settings.WEBHOOKS_TIMEOUT,
                     before_longest=now - timedelta(seconds=sweep_grace(TIMEOUT_MAX)))
    woken = endpoints_awaken([row[0] for row in _SWEEP_DUE.run(now=now)])
    metrics.sweeper_requeued(count=woken)
    return woken


class Listened(enum.Enum):
    """How a holder's listening ended (endpoint_listen)."""

    WOKEN = "a caller sent a wake, or the look after the mark found work: start again"
    QUIET = "nothing came for LISTEN_SECONDS: let go (the last look needs no linger)"
    NOT_LISTENING = "not in a running worker, or no listener's thread free: let go as before"


_listeners = threading.BoundedSemaphore(LISTENERS_PER_PROCESS)
_listening = threading.Event()  # set while this process is a worker that has started and is not stopping
_local = threading.local()  # each pool thread's own broker connection for listening
_waiting: set = set()  # the endpoints whose holder in this process waits on its channel now (listening_stop)
_waiting_lock = threading.Lock()


def _channel(subscription_id) -> str:
    """The name of the endpoint's wake queue (under the worker's task queue, so that separate deployments on
    one broker do not wake each other's senders)."""
    return f"{settings.CELERY_TASK_DEFAULT_QUEUE}.wake.{subscription_id}"


def _wake(subscription_id) -> None:
    """Send one wake to the endpoint's listening holder; a broker error only delays (its wait ends by itself)."""
    try:
        with current_app.producer_pool.acquire(block=True) as producer:
            producer.publish({}, exchange="", routing_key=_channel(subscription_id), serializer="json",
                             retry=False)
    except Exception:  # noqa: BLE001 - any broker error: the holder's wait ends after LISTEN_SECONDS
        logger.warning("Broker unavailable; the listening holder of endpoint %s wakes by itself", subscription_id)


def endpoint_listen(subscription_id) -> Listened:
    """Mark the endpoint's row listening, look once more, and wait up to LISTEN_SECONDS for a wake (the holder).

    The look comes after the mark: a delivery whose caller found the row not yet
    listening committed before the mark, so the look finds it; a caller that found it
    listening sends a wake. A wake left over from earlier costs one empty claim.
    """
    listened = _listen(subscription_id)
    if listened is not Listened.WOKEN:
        _listener_close()  # the holder lets go: its endpoint's channel is no longer consumed
    return listened


def _listen(subscription_id) -> Listened:
    if not _listening.is_set() or not _listeners.acquire(blocking=False):
        return Listened.NOT_LISTENING
    try:
        if not _LISTEN.run(id=subscription_id, now=timezone.now()):
            return Listened.NOT_LISTENING  # the row is gone (the sweeper found it stale): let go as before
        if states.has_sendable(subscription_id=subscription_id):
            return Listened.WOKEN
        return Listened.WOKEN if _wait(subscription_id) else Listened.QUIET
    finally:
        _listeners.release()


def _listener(subscription_id):
    """This thread's consumer of the endpoint's channel: the one kept from its last wait when that was on
    the same endpoint (a woken holder listens again on it: a steady trickle declares and consumes the queue
    once, not once per event), else a new one on this thread's connection."""
    kept = getattr(_local, "listener", None)
    if kept is not None and kept[0] == subscription_id:
        return kept[1]
    _listener_close()
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = current_app.connection_for_read()
    queue = Queue(_channel(subscription_id), Exchange(""), routing_key=_channel(subscription_id))
    listener = connection.SimpleQueue(queue, no_ack=True, accept=["json"])  # declares the queue
    _local.listener = (subscription_id, listener)
    return listener


def _listener_close() -> None:
    """Stop consuming the channel this thread's last wait kept (none: nothing to do)."""
    kept, _local.listener = getattr(_local, "listener", None), None
    if kept is not None:
        try:
            kept[1].close()
        except Exception:  # noqa: BLE001, S110 - a connection already lost; _wait replaces it
            pass


def _wait(subscription_id) -> bool:
    """Wait up to LISTEN_SECONDS for a wake on the endpoint's channel; return True if one came (the
    channel's consumer is then kept for the next wait, endpoint_listen closes it when the holder lets go)."""
    try:
        listener = _listener(subscription_id)
        with _waiting_lock:
            _waiting.add(subscription_id)
        try:
            if not _listening.is_set():
                return False  # the worker began to stop before this wait was known to listening_stop
            listener.get(block=True, timeout=LISTEN_SECONDS)
            return _listening.is_set()  # a wake from listening_stop ends the listen as a quiet one
        except listener.Empty:
            return False
        finally:
            with _waiting_lock:
                _waiting.discard(subscription_id)
    except Exception:  # noqa: BLE001 - a broker error ends the wait: the last look finds what committed
        logger.warning("Broker unavailable while endpoint %s listened for a wake", subscription_id)
        _listener_close()
        connection, _local.connection = getattr(_local, "connection", None), None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # noqa: BLE001, S110 - a connection already lost
                pass
        return False


def listening_start() -> None:
    """Let the holders of this process listen (a worker has started: delivery.receivers). Elsewhere (a
    web process sending Try now's probe, a test or the bench running a sender in-process) a holder lets go at
    once."""
    _listening.set()


def listening_stop() -> None:
    """Stop the holders of this process from listening (the worker is shutting down): no holder listens
    again, and each one waiting now gets a wake, so that the warm shutdown does not wait out its
    LISTEN_SECONDS (it lets go as after a quiet listen; without the broker, its wait ends by itself)."""
    _listening.clear()
    with _waiting_lock:
        waiting = list(_waiting)
    for subscription_id in waiting:
        _wake(subscription_id)
