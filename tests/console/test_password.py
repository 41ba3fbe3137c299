"""Change password from the account menu, reset by email through a real SMTP server
(aiosmtpd), and the login error that says "email" as the field does (issue 17)."""

import re

import pytest
from django.contrib.auth import get_user_model

from tests.console.test_mail import received, smtp_server  # noqa: F401  (the fixture)
from tests.factories import make_user

pytestmark = pytest.mark.django_db
NEW = "a-new-Passw0rd-for-alice"


def test_the_account_menu_links_change_password_and_the_nav_the_api_docs(client, alice):
    client.force_login(alice)
    body = client.get("/logs/").content.decode()
    assert '<a class="menu-item" href="/accounts/password_change/">Change password</a>' in body
    assert 'href="/api/v1/docs/"' in body and ">API docs</a>" in body


def test_change_password(client, alice):
    client.force_login(alice)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200 and "Current password" in page.content.decode()
    wrong = client.post(
        "/accounts/password_change/", {"old_password": "nope", "new_password1": NEW, "new_password2": NEW}
    )
    assert wrong.status_code == 200 and "incorrectly" in wrong.content.decode()
    response = client.post(
        "/accounts/password_change/", {"old_password": "pw-for-tests-1", "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password_change/done/"
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    assert "Your password is changed" in client.get(response["Location"]).content.decode()


def test_the_login_error_says_email(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@acme.test", "password": "wrong"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Please enter a correct email and password." in body
    assert "correct username" not in body
    assert 'href="/accounts/password_reset/"' in body


def test_password_reset_by_email(client, smtp_server, acme):  # noqa: F811
    user = make_user("dora@acme.test", account=acme, role="viewer")
    response = client.post("/accounts/password_reset/", {"email": "DORA@acme.test"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    envelope, message = received(smtp_server)
    assert envelope.rcpt_tos == ["dora@acme.test"]
    assert message["Subject"] == "Reset your Meterlog password"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", text).group(1)
    assert link in html and "Choose a new password" in html

    # The link leads to the form (Django swaps the token into the session first).
    form = client.get(link, follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    set_url = form.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    user.refresh_from_db()
    assert user.check_password(NEW)
    # The link works once.
    again = client.get(link, follow=True)
    assert not again.context["validlink"] and "This link does not work" in again.content.decode()
    logged_in = client.post("/accounts/login/", {"username": "dora@acme.test", "password": NEW})
    assert logged_in.status_code == 302


def test_a_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client, smtp_server):  # noqa: F811
    response = client.post("/accounts/password_reset/", {"email": "nobody@nowhere.test"}, follow=True)
    assert "Check your mail" in response.content.decode()
    assert smtp_server.envelopes == []
    assert not get_user_model().objects.filter(email="nobody@nowhere.test").exists()
