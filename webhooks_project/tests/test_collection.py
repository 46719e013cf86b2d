"""A test that pytest never collects never ran: every tests folder and test_*.py file of the project is collected."""

import os
import subprocess
import sys

from conftest import ROOT

NOT_THE_PROJECTS = {".venv", "node_modules", "var", ".git", "__pycache__", ".pytest_cache", ".ruff_cache",
                    ".import_linter_cache", "staticfiles"}


def files_on_disk() -> list:
    """Return every test_*.py file of the project, outside the virtualenv, Node packages and var/."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in NOT_THE_PROJECTS and not d.startswith(".")]
        found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files
                  if f.startswith("test_") and f.endswith(".py")]
    return sorted(found)


def collected_files() -> set[str]:
    """Return the files that `pytest` (no arguments: pytest.ini's testpaths) collects tests from."""
    # On the services store no test is deselected, so a file is listed whatever its markers.
    env = {**os.environ, "TEST_STORES": "services"}
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return {line.split("::", 1)[0] for line in result.stdout.splitlines() if "::" in line}


def test_every_test_file_and_tests_folder_is_collected():
    on_disk = files_on_disk()
    collected = collected_files()
    assert len(on_disk) > 50 and "console/tests/test_tenancy.py" in on_disk
    missed = [path for path in on_disk if path not in collected]
    assert not missed, f"never collected (add the folder to pytest.ini's testpaths): {missed}"
    folders = {os.path.relpath(folder, ROOT) for folder, dirs, _ in os.walk(ROOT)
               if os.path.basename(folder) == "tests" and not NOT_THE_PROJECTS & set(folder.split(os.sep))}
    empty = sorted(f for f in folders if not any(path.startswith(f + os.sep) for path in collected))
    assert not empty, f"tests folders pytest collects nothing from: {empty}"
