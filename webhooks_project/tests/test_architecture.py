"""The architecture contract (.importlinter), checked by import-linter on every `make test`.

The app graph goes one way: the faces (console; the API; management commands) use alerts,
delivery, subscriptions and organisations; delivery uses subscriptions; subscriptions reaches
delivery only through its signals; nothing below a face imports it.
"""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(cwd)})


def root_packages() -> list[str]:
    text = (ROOT / ".importlinter").read_text()
    block = text.split("root_packages =", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_app_graph_goes_one_way():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_every_app_is_under_the_contract():
    apps = sorted(p.parent.name for p in ROOT.glob("*/apps.py"))
    assert apps and set(apps) <= set(root_packages()), f"apps missing from .importlinter's root_packages: {apps}"


def test_the_contract_refuses_subscriptions_importing_delivery_and_delivery_importing_a_face(tmp_path):
    # Bad input: a copy of the code where subscriptions imports a delivery service (the old cycle)
    # and delivery imports a console form.
    for package in root_packages():
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("node", "__pycache__", "*.json", "*.mjs"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    with (tmp_path / "subscriptions" / "services.py").open("a") as f:
        f.write("\nfrom delivery.services import deliveries_recover_since  # noqa\n")
    with (tmp_path / "delivery" / "bulk.py").open("a") as f:
        f.write("\nfrom console.forms import LogFilterForm  # noqa\n")
    # And the API: subscriptions importing it, and the API importing the console (a face above it).
    with (tmp_path / "subscriptions" / "selectors.py").open("a") as f:
        f.write("\nfrom api.selectors import api_key_get  # noqa\n")
    with (tmp_path / "api" / "v1.py").open("a") as f:
        f.write("\nfrom console.forms import LogFilterForm  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert "subscriptions is not allowed to import delivery" in result.stdout
    assert "- subscriptions.services -> delivery.services" in result.stdout
    assert "delivery is not allowed to import console" in result.stdout
    assert "- delivery.bulk -> console.forms" in result.stdout
    assert "subscriptions is not allowed to import api" in result.stdout
    assert "api is not allowed to import console" in result.stdout
    assert "- api.v1 -> console.forms" in result.stdout
