"""The systemd units of docs/deploy/ run the production commands of docs/OPERATIONS.md, restarted whatever ends them."""

import configparser
import shlex

import pytest

from conftest import ROOT
from webhooks_project.tests.test_production import production_commands

UNITS = sorted((ROOT / "docs" / "deploy").glob("*.service"))
VENV_BIN = "/srv/webhooks/.venv/bin/"


def unit(path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(path)
    return parser


def test_there_is_a_unit_for_the_web_the_worker_and_the_scheduler():
    assert [path.name for path in UNITS] == ["webhooks-beat.service", "webhooks-web.service",
                                             "webhooks-worker.service"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_a_unit_runs_a_documented_production_command(path):
    argv = shlex.split(unit(path)["Service"]["ExecStart"])
    assert argv[0].startswith(VENV_BIN)
    assert [argv[0].removeprefix(VENV_BIN), *argv[1:]] in production_commands()


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_a_unit_is_restarted_whatever_ends_it_and_systemd_never_gives_up(path):
    parsed = unit(path)
    assert parsed["Service"]["Restart"] == "always"
    assert parsed["Unit"]["StartLimitIntervalSec"] == "0"
