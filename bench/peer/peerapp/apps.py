import time

from django.apps import AppConfig
from django.db.models.signals import post_save

COMMITTED: dict[int, float] = {}


def _stamp(sender, instance, created, **kwargs):
    # Connected before django-webhook's receiver: the row is committed (autocommit), not yet enqueued.
    COMMITTED[instance.pk] = time.time()


class PeerAppConfig(AppConfig):
    name = "peerapp"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from peerapp.models import Lot

        post_save.connect(_stamp, sender=Lot, dispatch_uid="bench_commit_stamp")
