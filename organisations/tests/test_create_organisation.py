import pytest
from django.core.management import call_command

from organisations.models import Membership, Organisation

pytestmark = pytest.mark.django_db


def test_creates_organisation_and_admin_and_is_idempotent(capsys):
    for _ in range(2):
        call_command("create_organisation", "acme", "--name", "Acme", "--admin", "alice", "--password", "pw-long-1")
    assert Organisation.objects.get().name == "Acme"
    membership = Membership.objects.get()
    assert membership.user.username == "alice" and membership.role == Membership.Role.ADMIN
    assert membership.user.check_password("pw-long-1")
    assert "admin login: alice" in capsys.readouterr().out
