"""Re-encrypt every encrypted value under the newest WEBHOOKS_ENCRYPTION_KEYS key.

Rotation: put a new key first in WEBHOOKS_ENCRYPTION_KEYS (keep the old ones
after it), deploy, run this command, then drop the old keys. What is encrypted
is listed in subscriptions/encrypted_values.py (signing secrets, the previous
secret of a planned rotation, secret custom header values); the command says how
many of each it re-encrypted. Values are never printed; one that no key can
decrypt is reported by subscription id, and the command then exits non-zero.
"""

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand, CommandError

from subscriptions.key_rotation import encrypted_values_rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted value (signing secrets, secret header values...) under the newest key."

    def add_arguments(self, parser):
        parser.add_argument("--generate-key", action="store_true",
                            help="only print a new key to put first in WEBHOOKS_ENCRYPTION_KEYS")

    def handle(self, *args, generate_key=False, **options):
        if generate_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        results = encrypted_values_rotate()
        for r in results:
            self.stdout.write(f"{r.label}: {r.reencrypted} re-encrypted, {r.current} already under the newest key")
        failed = [r for r in results if r.undecryptable]
        if failed:
            where = "; ".join(f"{r.label} of {r.rows} {', '.join(r.undecryptable)}" for r in failed)
            raise CommandError(
                f"{sum(len(r.undecryptable) for r in failed)} values could not be decrypted with any key in "
                f"WEBHOOKS_ENCRYPTION_KEYS ({where}); add the key they were written with and run again."
            )
