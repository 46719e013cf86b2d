"""A test that pytest never collects never ran: every tests folder is under pytest.ini's testpaths."""

import configparser
from pathlib import Path

from conftest import ROOT


def test_every_tests_folder_is_under_testpaths():
    config = configparser.ConfigParser()
    config.read(ROOT / "pytest.ini")
    testpaths = [ROOT / p for p in config["pytest"]["testpaths"].split()]
    folders = [p for p in ROOT.rglob("tests") if p.is_dir() and not {".venv", "node_modules", "var"} & set(p.parts)]

    assert len(folders) >= 8  # the walk found the apps' folders
    missed = [str(f.relative_to(ROOT)) for f in folders if not any(f.is_relative_to(t) for t in testpaths)]
    assert missed == [], "tests folders that `make test` would never run: add them to testpaths in pytest.ini"
    assert all(Path(t).is_dir() for t in testpaths)
