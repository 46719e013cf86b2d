"""PostgreSQL's JIT is off for our connections (DATABASE_JIT): compiling cost more than the console's queries run."""

import pytest
from django.db import connection


@pytest.mark.services_only
@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
