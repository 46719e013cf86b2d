"""Drive the peer from its own virtualenv: `python drive.py setup URL SECRET`, `python drive.py emit N RATE`.

`emit` creates N Lot rows (RATE per second, 0 for as fast as possible), each in
autocommit as a plain view would, and prints {"peer:<id>": commit time} as JSON.
"""

import json
import os
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
    django.setup()
    from django.core.management import call_command
    from django_webhook.models import Webhook, WebhookSecret, WebhookTopic
    from peerapp.apps import COMMITTED
    from peerapp.models import Lot

    command = sys.argv[1]
    if command == "setup":
        call_command("migrate", run_syncdb=True, verbosity=0)
        from django_webhook.models import populate_topics_from_settings

        populate_topics_from_settings()
        webhook = Webhook.objects.create(url=sys.argv[2])
        webhook.topics.add(WebhookTopic.objects.get(name="peerapp.Lot/create"))
        WebhookSecret.objects.create(webhook=webhook, token=sys.argv[3])
        return
    count, rate = int(sys.argv[2]), float(sys.argv[3])
    start = time.monotonic()
    first = time.time()
    for i in range(count):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        Lot.objects.create(lot_code=f"LOT-{i}", weight_grams=5000.0, strain="Blue Dream")
    json.dump({"first": first, "committed": {f"peer:{pk}": at for pk, at in COMMITTED.items()}}, sys.stdout)


if __name__ == "__main__":
    main()
