"""One owner per state machine: only delivery/states.py writes a Delivery's state columns.

An AST walk of the project's code (tests, migrations and the bench's data
generators apart: they set rows up, they are not the product) finds every call
that writes a column of the Delivery state machine: `.update(...)`,
`.bulk_update(...)`, `Delivery(...)`, `.create(...)`/`.get_or_create(...)` on
Delivery, and assignments such as `delivery.locked_until = ...`; each must be
in delivery/states.py. `state` alone is shared with Subscription, so it counts
where the call is on Delivery or on a name that says delivery.
"""

import ast
from pathlib import Path

from conftest import ROOT

STATE_COLUMNS = {"state", "next_attempt_at", "locked_until", "attempt_count", "schedule_offset", "completed_at",
                 "last_status_code", "last_error"}
ONLY_DELIVERY = STATE_COLUMNS - {"state"}  # names no other model of ours has
OWNER = ROOT / "delivery" / "states.py"
WRITE_CALLS = {"update", "bulk_update", "create", "get_or_create", "update_or_create"}


def _project_files() -> list[Path]:
    skip = {".venv", "node_modules", "var", "migrations", "tests", ".git"}
    return [p for p in ROOT.rglob("*.py")
            if not skip & set(p.relative_to(ROOT).parts) and p.relative_to(ROOT).parts[0] != "bench"]


def _mentions_delivery(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and "deliver" in n.id.lower() or
               isinstance(n, ast.Attribute) and "deliver" in n.attr.lower() for n in ast.walk(node))


def _on_a_queryset(func: ast.AST) -> bool:
    """True for `X.objects....update(...)` or `<a query>.update(...)`, not for `some_dict.update(...)`."""
    value = func.value if isinstance(func, ast.Attribute) else None
    return isinstance(value, ast.Call) or any(isinstance(n, ast.Attribute) and n.attr == "objects"
                                              for n in ast.walk(value)) if value is not None else False


def state_writes(path: Path, root: Path = ROOT) -> list[str]:
    """Return "file:line what" for every write of a Delivery state column in the file."""
    found = []
    where = path.relative_to(root)
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            keywords = {k.arg for k in node.keywords if k.arg}
            if name == "Delivery" or name in WRITE_CALLS and (_on_a_queryset(func) or _mentions_delivery(func)):
                on_delivery = name == "Delivery" or _mentions_delivery(func)
                columns = keywords & (STATE_COLUMNS if on_delivery else ONLY_DELIVERY)
                if columns:
                    found.append(f"{where}:{node.lineno} {name}({', '.join(sorted(columns))})")
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and (
                        target.attr in ONLY_DELIVERY or target.attr == "state" and _mentions_delivery(target.value)):
                    found.append(f"{where}:{node.lineno} .{target.attr} =")
    return found


def test_only_delivery_states_writes_the_state_columns_of_a_delivery():
    writes = [w for path in _project_files() if path != OWNER for w in state_writes(path)]
    assert writes == [], "Delivery state written outside delivery/states.py:\n" + "\n".join(writes)
    assert state_writes(OWNER), "the walk finds the owner's own writes (it can see a write at all)"


def test_the_walk_finds_a_state_write_added_outside_the_owner(tmp_path):
    # Bad input: a service that retries a delivery by hand, and a view that unclaims one.
    rogue = tmp_path / "rogue.py"
    rogue.write_text(
        "def retry(delivery_id):\n"
        "    Delivery.objects.filter(id=delivery_id).update(state='pending', next_attempt_at=None)\n"
        "def unclaim(d):\n"
        "    d.locked_until = None\n"
        "def pause(subscription):\n"
        "    Subscription.objects.filter(id=subscription.id).update(state='paused')\n")
    found = [w.split(" ", 1)[1] for w in state_writes(rogue, root=tmp_path)]
    assert sorted(found) == [".locked_until =", "update(next_attempt_at, state)"]  # a subscription's state is not

