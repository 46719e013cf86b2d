"""docs/EVENTS.md is generated from the catalogue, and a stale copy fails this test."""

import json

import pytest
from django.core.management import CommandError, call_command

from subscriptions.activity_types import ACTIVITY_TYPES
from subscriptions.event_docs import render_markdown
from subscriptions.management.commands.generate_event_docs import default_path


def test_committed_events_md_is_up_to_date():
    committed = default_path().read_text(encoding="utf-8")
    assert committed == render_markdown(), "docs/EVENTS.md is stale: run `python manage.py generate_event_docs`"


def test_events_md_lists_every_type_with_its_label_schema_and_sample():
    text = default_path().read_text(encoding="utf-8")
    for code, activity_type in ACTIVITY_TYPES.items():
        section = text.split(f"\n### {code}\n", 1)[1].split("\n### ", 1)[0]
        assert f"**{activity_type.label}**. {activity_type.description}" in section
        blocks = section.split("```json\n")[1:]
        schema, sample = (json.loads(block.split("\n```", 1)[0]) for block in blocks)
        assert schema == activity_type.schema
        assert sample["type"] == code and sample["data"] == activity_type.sample


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    """Bad input: a generated file with one line edited by hand."""
    path = tmp_path / "EVENTS.md"
    call_command("generate_event_docs", "--output", str(path))
    call_command("generate_event_docs", "--output", str(path), "--check")
    path.write_text(path.read_text().replace("Batch created", "Batch made", 1))
    with pytest.raises(CommandError, match="is stale"):
        call_command("generate_event_docs", "--output", str(path), "--check")


def test_check_fails_when_the_file_is_missing(tmp_path):
    """Bad input: no file at all."""
    with pytest.raises(CommandError, match="is stale"):
        call_command("generate_event_docs", "--output", str(tmp_path / "missing.md"), "--check")
