"""console.mail and `manage.py send_test_mail` against a real SMTP server (aiosmtpd) started here."""

import logging
import socket
import time
from email import message_from_bytes, policy
from io import StringIO

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.core.management import CommandError, call_command, execute_from_command_line
from django.test import override_settings

from console.email_url import FILE_BACKEND, SMTP_BACKEND, parse_email_url
from console.mail import delivery_description, send_mail_message

# aiosmtpd logs every connection from its own thread, sometimes after pytest closed its capture.
logging.getLogger("mail.log").setLevel(logging.WARNING)

CSV = "day,model,cost\n2026-12-01,gpt-4o,1.25\n2026-12-02,claude-sonnet,0.50 €\n".encode()


class Inbox:
    """An aiosmtpd handler that keeps each envelope it was given."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.test"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(**kwargs) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller, inbox


@pytest.fixture
def smtp_server():
    controller, inbox = start_server()
    # Django's test runner swaps in the locmem backend; these tests want the real thing.
    with override_settings(
        **parse_email_url(f"smtp://127.0.0.1:{controller.port}"),
        EMAIL_TIMEOUT=5,
        DEFAULT_FROM_EMAIL="Meterlog <meterlog@example.test>",
    ):
        yield inbox
    controller.stop()


def received(inbox: Inbox):
    assert len(inbox.envelopes) == 1
    envelope = inbox.envelopes[0]
    return envelope, message_from_bytes(envelope.original_content, policy=policy.default)


def test_a_message_with_html_and_a_csv_attachment_arrives_whole(smtp_server):
    sent = send_mail_message(
        to=["ops@example.test", "finance@example.test"],
        subject="Usage report: December",
        text="Total cost: 1.75 USD\n",
        html="<p>Total cost: <b>1.75 USD</b></p>",
        attachments=[("usage-2026-12.csv", CSV, "text/csv")],
    )
    assert sent == 1
    envelope, message = received(smtp_server)
    assert envelope.mail_from == "meterlog@example.test"
    assert envelope.rcpt_tos == ["ops@example.test", "finance@example.test"]
    assert message["Subject"] == "Usage report: December"
    assert message["From"] == "Meterlog <meterlog@example.test>"
    assert message["To"] == "ops@example.test, finance@example.test"
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content() == "Total cost: 1.75 USD\r\n"  # CRLF on the wire
    assert message.get_body(("html",)).get_content().strip() == "<p>Total cost: <b>1.75 USD</b></p>"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "usage-2026-12.csv"
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_payload(decode=True) == CSV


def test_binary_attachments_and_a_single_recipient(smtp_server):
    pdf = b"%PDF-1.4\n\x00\xff\xfe binary\r\n"
    attachments = [("Rapport März.pdf", pdf, "application/pdf"), ("blob", b"\x01\x02", "unknown")]
    send_mail_message(to="ops@example.test", subject="s", text="t", attachments=attachments)
    envelope, message = received(smtp_server)
    assert envelope.rcpt_tos == ["ops@example.test"]
    assert message.get_content_type() == "multipart/mixed"  # no HTML: text and attachments only
    assert [
        (a.get_filename(), a.get_content_type(), a.get_payload(decode=True)) for a in message.iter_attachments()
    ] == [
        ("Rapport März.pdf", "application/pdf", pdf),
        ("blob", "application/octet-stream", b"\x01\x02"),
    ]


def run_send_test_mail(*args) -> str:
    out = StringIO()
    call_command("send_test_mail", *args, stdout=out)
    return out.getvalue()


def test_send_test_mail_sends_one_mail_and_says_where(smtp_server, settings):
    out = run_send_test_mail("--to", "ops@example.test")
    envelope, message = received(smtp_server)
    assert envelope.rcpt_tos == ["ops@example.test"]
    assert message["Subject"] == "Meterlog test mail"
    assert "send_test_mail" in message.get_body(("plain",)).get_content()
    assert f"SMTP server 127.0.0.1:{settings.EMAIL_PORT} (no TLS, no login, timeout 5 s)" in out
    assert "Sent: the test mail to ops@example.test was accepted." in out


def test_send_test_mail_reports_a_refused_recipient(smtp_server):
    with pytest.raises(
        CommandError, match=r"the server refused the recipient \(nobody@refused.test: 550 5.1.1 no such"
    ):
        run_send_test_mail("--to", "nobody@refused.test")
    assert smtp_server.envelopes == []


def test_send_test_mail_refuses_a_bad_address():
    with pytest.raises(CommandError, match="--to: 'not-an-address' is not an email address"):
        run_send_test_mail("--to", "not-an-address")


def test_send_test_mail_to_a_closed_port_fails_quickly_with_a_clear_message():
    port = free_port()  # nothing listens there
    with override_settings(**parse_email_url(f"smtp://127.0.0.1:{port}"), EMAIL_TIMEOUT=2):
        started = time.monotonic()
        with pytest.raises(CommandError) as caught:
            run_send_test_mail("--to", "ops@example.test")
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"Could not send the test mail via SMTP server 127.0.0.1:{port} (no TLS, no login, timeout 2 s): "
        "connection refused (nothing listens on that host and port)"
    )


def test_a_server_that_never_answers_is_given_up_after_email_timeout():
    # Accepts the connection (the kernel's backlog) but never sends its greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with override_settings(**parse_email_url(f"smtp://127.0.0.1:{port}"), EMAIL_TIMEOUT=1):
            started = time.monotonic()
            with pytest.raises(CommandError, match=r"no answer within EMAIL_TIMEOUT \(1 s\)"):
                run_send_test_mail("--to", "ops@example.test")
            assert 0.9 < time.monotonic() - started < 5


def test_send_test_mail_exit_status_and_no_traceback_from_the_command_line(capsys):
    port = free_port()
    settings = parse_email_url(f"smtp://127.0.0.1:{port}")
    with override_settings(**settings, EMAIL_TIMEOUT=2), pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "send_test_mail", "--to", "ops@example.test"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "CommandError: Could not send the test mail" in err and "connection refused" in err
    assert "Traceback" not in err


# Plain-text AUTH is fine on 127.0.0.1; aiosmtpd warns about it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_auth_with_a_percent_encoded_password_from_email_url():
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss:w/rd", handled=False)  # handled=False: 535 on failure

    controller, inbox = start_server(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    try:
        good = parse_email_url(f"smtp://reports%40example.test:p%40ss%3Aw%2Frd@127.0.0.1:{controller.port}")
        assert good["EMAIL_BACKEND"] == SMTP_BACKEND
        with override_settings(**good, EMAIL_TIMEOUT=5):
            run_send_test_mail("--to", "ops@example.test")
        assert logins[-1][1:] == (b"reports@example.test", b"p@ss:w/rd")
        assert len(inbox.envelopes) == 1

        bad = parse_email_url(f"smtp://reports%40example.test:wrong-one@127.0.0.1:{controller.port}")
        with override_settings(**bad, EMAIL_TIMEOUT=5), pytest.raises(CommandError) as caught:
            run_send_test_mail("--to", "ops@example.test")
        assert "the server refused the login (535" in str(caught.value)
        assert "wrong-one" not in str(caught.value)
        assert len(inbox.envelopes) == 1
    finally:
        controller.stop()


def test_the_file_backend_of_a_debug_run_without_mail_settings(tmp_path):
    mail_dir = tmp_path / "mail"
    with override_settings(EMAIL_BACKEND=FILE_BACKEND, EMAIL_FILE_PATH=str(mail_dir)):
        out = run_send_test_mail("--to", "ops@example.test")
    assert f"via files in {mail_dir} (no SMTP server configured;" in out
    [written] = list(mail_dir.iterdir())
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert (message["To"], message["Subject"]) == ("ops@example.test", "Meterlog test mail")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("smtp+tls://me%40x.test:s3cret@smtp.x.test", "SMTP server smtp.x.test:587 (STARTTLS, login as 'me@x.test'"),
        ("smtps://me:s3cret@smtp.x.test", "SMTP server smtp.x.test:465 (implicit TLS, login as 'me'"),
    ],
)
def test_where_mail_goes_never_shows_the_password(url, shown):
    with override_settings(**parse_email_url(url), EMAIL_TIMEOUT=10):
        description = delivery_description()
    assert description.startswith(shown) and description.endswith("timeout 10 s)")
    assert "s3cret" not in description
