"""Re-encrypt every value of subscriptions.encrypted_values under the newest WEBHOOKS_ENCRYPTION_KEYS key.

Each field is walked in primary-key order, BATCH rows at a time. A row with a token
under an older key is re-read locked and rewritten in a short transaction, so an
edit or a regenerated secret that commits meanwhile is never overwritten with an
older value. A token no listed key decrypts is left as it is and reported by row.
"""

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import transaction

from subscriptions.encrypted_values import ENCRYPTED_FIELDS, EncryptedField
from subscriptions.signing_secrets import encrypted_under_newest_key, reencrypt_secret

BATCH = 500


@dataclass
class Rotated:
    """What the rotation did to the values of one encrypted field."""

    label: str
    rows: str  # what the rows are ("subscriptions"), for the report
    reencrypted: int = 0
    current: int = 0  # already under the newest key
    undecryptable: list[str] = field(default_factory=list)  # primary keys of rows with a token no key decrypts


def encrypted_values_rotate(*, batch: int = BATCH) -> list[Rotated]:
    """Re-encrypt every registered value under the newest key; return what was done, field by field."""
    return [_rotate_field(entry, batch=batch) for entry in ENCRYPTED_FIELDS]


def _rotate_field(entry: EncryptedField, *, batch: int) -> Rotated:
    model = apps.get_model(entry.model)
    pk = model._meta.pk.attname
    rotated = Rotated(entry.label, str(model._meta.verbose_name_plural))
    last = None
    while True:
        page = model._base_manager.order_by(pk).values_list(pk, entry.field)
        if last is not None:
            page = page.filter(**{f"{pk}__gt": last})
        rows = list(page[:batch])
        if not rows:
            return rotated
        last = rows[-1][0]
        stale = []
        for row_pk, value in rows:
            tokens = entry.tokens(value)
            old = [t for t in tokens if not encrypted_under_newest_key(t)]
            rotated.current += len(tokens) - len(old)
            if old:
                stale.append(row_pk)
        if stale:
            _rewrite(model, entry, pk, stale, rotated)


@transaction.atomic
def _rewrite(model, entry: EncryptedField, pk: str, ids: list, rotated: Rotated) -> None:
    """Re-read the rows locked and write each back with its old tokens re-encrypted under the newest key."""
    for row_pk, value in model._base_manager.select_for_update().filter(**{f"{pk}__in": ids}).values_list(
            pk, entry.field):
        failed = False

        def reencrypted(token: str) -> str:
            nonlocal failed
            if encrypted_under_newest_key(token):
                rotated.current += 1  # rewritten meanwhile (a new secret), or one of several in this value
                return token
            try:
                new = reencrypt_secret(token)
            except InvalidToken:
                failed = True
                return token
            rotated.reencrypted += 1
            return new

        new_value = entry.replaced(value, reencrypted)
        if failed:
            rotated.undecryptable.append(str(row_pk))
        if new_value != value:
            model._base_manager.filter(**{pk: row_pk}).update(**{entry.field: new_value})
