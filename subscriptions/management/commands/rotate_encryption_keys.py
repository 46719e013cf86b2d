"""Re-encrypt every signing secret under the newest WEBHOOKS_ENCRYPTION_KEYS key.

Rotation: put a new key first in WEBHOOKS_ENCRYPTION_KEYS (keep the old ones
after it), deploy, run this command, then drop the old keys. Secrets are never
printed; a secret no key can decrypt is reported by subscription id, and the
command then exits non-zero.
"""

from cryptography.fernet import Fernet, InvalidToken
from django.core.management.base import BaseCommand, CommandError

from subscriptions.models import Subscription
from subscriptions.signing_secrets import encrypted_under_newest_key, reencrypt_secret

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt every signing secret under the newest key of WEBHOOKS_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--generate-key", action="store_true",
                            help="only print a new key to put first in WEBHOOKS_ENCRYPTION_KEYS")

    def handle(self, *args, generate_key=False, **options):
        if generate_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        rotated = current = changed_meanwhile = 0
        failed = []
        last_id = None
        while True:
            # Deleted subscriptions keep their secret row too: all of them are rotated.
            page = Subscription.objects.order_by("id").values_list("id", "secret_encrypted")
            if last_id is not None:
                page = page.filter(id__gt=last_id)
            rows = list(page[:BATCH])
            if not rows:
                break
            last_id = rows[-1][0]
            for subscription_id, token in rows:
                if encrypted_under_newest_key(token):
                    current += 1
                    continue
                try:
                    new_token = reencrypt_secret(token)
                except InvalidToken:
                    failed.append(str(subscription_id))
                    continue
                # Compare-and-swap: a secret regenerated meanwhile is already under the newest key.
                if Subscription.objects.filter(id=subscription_id, secret_encrypted=token).update(
                    secret_encrypted=new_token
                ):
                    rotated += 1
                else:
                    changed_meanwhile += 1
        self.stdout.write(
            f"Re-encrypted {rotated} secrets under the newest key; {current} already were"
            + (f"; {changed_meanwhile} changed meanwhile (already current)" if changed_meanwhile else "")
            + "."
        )
        if failed:
            raise CommandError(
                f"{len(failed)} secrets could not be decrypted with any key in WEBHOOKS_ENCRYPTION_KEYS "
                f"(subscriptions {', '.join(failed)}); add the key they were written with and run again."
            )
