"""What an alert says failed: our words on the "What failed" line, the endpoint's only quoted, labelled, one line."""

from alerts.failure_lines import ANSWER_CHARS, ANSWER_LABEL, RECORDED_LABEL, FailureLines, failure_lines, one_line
from delivery.models import Attempt


def attempt(**fields) -> Attempt:
    return Attempt(number=1, url="https://hooks.example.com/in", duration_ms=5, **fields)


def test_an_http_failure_is_the_status_and_its_phrase_and_the_body_quoted_apart():
    lines = failure_lines(attempt(status_code=500, response_body="URGENT: reset at https://evil.example/\nmore"))
    assert lines == FailureLines(what="HTTP 500 Internal Server Error", quoted="URGENT: reset at https://evil.example/",
                                 label=ANSWER_LABEL)


def test_a_status_http_does_not_know_has_no_phrase_and_an_empty_body_no_quote():
    assert failure_lines(attempt(status_code=599, response_body="")) == FailureLines(what="HTTP 599")


def test_our_own_error_messages_are_the_what_and_the_others_are_quoted_as_recorded():
    timeout = attempt(error_kind="timeout", error_message="TLS handshake not finished within 10 s.")
    assert failure_lines(timeout) == FailureLines(what="TLS handshake not finished within 10 s.")
    garbage = attempt(error_kind="other", error_message="The endpoint did not answer valid HTTP: BadStatusLine: "
                                                        "'URGENT: call us'")
    lines = failure_lines(garbage)
    assert lines.what == "Other error." and "URGENT" in lines.quoted and lines.label == RECORDED_LABEL


def test_without_an_attempt_the_recorded_summary_is_quoted():
    lines = failure_lines(None, recorded="HTTP 500")
    assert lines.what == "The endpoint did not accept the delivery." and lines.quoted == "HTTP 500"


def test_one_line_drops_controls_bidi_overrides_and_other_lines_and_cuts_long_text():
    # Bad input: a blank first line, a bidi override, a NEL line break, tabs and a zero-width joiner.
    assert one_line("\n  \u202eabc\u200d\tdef\x85second line") == "abc def"
    assert one_line("x" * 500) == "x" * (ANSWER_CHARS - 1) + "…"
    assert one_line(None) == "" and one_line("\r\n\r\n") == ""
