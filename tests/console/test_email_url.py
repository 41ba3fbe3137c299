"""EMAIL_URL parsing and the mail settings read from the environment (console/email_url.py)."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from console.email_url import FILE_BACKEND, SMTP_BACKEND, email_settings_from_env, parse_email_url

MAIL_VARIABLES = (
    "EMAIL_URL",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
    "DEFAULT_FROM_EMAIL",
    "SERVER_EMAIL",
)


def smtp(host, port, user="", password="", tls=False, ssl=False):
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": host,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": user,
        "EMAIL_HOST_PASSWORD": password,
        "EMAIL_USE_TLS": tls,
        "EMAIL_USE_SSL": ssl,
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mailpit:1025", smtp("mailpit", 1025)),
        ("smtp://mail.example.com", smtp("mail.example.com", 25)),
        ("smtp://mail.example.com:2525/", smtp("mail.example.com", 2525)),
        ("smtp+tls://me:secret@mail.example.com", smtp("mail.example.com", 587, "me", "secret", tls=True)),
        ("smtp+tls://me:secret@mail.example.com:2587", smtp("mail.example.com", 2587, "me", "secret", tls=True)),
        ("smtps://me:secret@mail.example.com", smtp("mail.example.com", 465, "me", "secret", ssl=True)),
        ("smtp+ssl://me:secret@mail.example.com:4650", smtp("mail.example.com", 4650, "me", "secret", ssl=True)),
        ("SMTP+TLS://me:secret@Mail.Example.com", smtp("mail.example.com", 587, "me", "secret", tls=True)),
        ("smtp://[::1]:1025", smtp("::1", 1025)),
        ("  smtp://127.0.0.1:1025\n", smtp("127.0.0.1", 1025)),
    ],
)
def test_each_scheme(url, expected):
    assert parse_email_url(url) == expected


def test_user_and_password_are_percent_decoded():
    found = parse_email_url("smtp+tls://apikey%40example.com:p%40ss%3Aw%2Frd%25%23%3F@smtp.example.com")
    assert found["EMAIL_HOST_USER"] == "apikey@example.com"
    assert found["EMAIL_HOST_PASSWORD"] == "p@ss:w/rd%#?"
    assert (found["EMAIL_HOST"], found["EMAIL_PORT"]) == ("smtp.example.com", 587)


def test_an_unencoded_at_sign_in_the_password_still_parses():
    # The host is what follows the last @.
    found = parse_email_url("smtp://me:p@ss@smtp.example.com:25")
    assert (found["EMAIL_HOST_PASSWORD"], found["EMAIL_HOST"]) == ("p@ss", "smtp.example.com")


def test_a_user_without_password():
    found = parse_email_url("smtp://relay-user@relay.internal")
    assert (found["EMAIL_HOST_USER"], found["EMAIL_HOST_PASSWORD"]) == ("relay-user", "")


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("console://", "django.core.mail.backends.console.EmailBackend"),
        ("locmem://", "django.core.mail.backends.locmem.EmailBackend"),
    ],
)
def test_development_schemes(url, backend):
    assert parse_email_url(url) == {"EMAIL_BACKEND": backend}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://me:hunter2@mail.example.com", "scheme 'http'; use one of smtp://, smtp+tls://"),
        ("mail.example.com:25", "scheme missing"),
        ("hunter2", "scheme missing"),
        ("smtp://me:hunter2@", "no host name"),
        ("smtp://me:hunter2@mail.example.com:port", "the port must be a number from 1 to 65535"),
        ("smtp://me:hunter2@mail.example.com:70000", "the port must be a number from 1 to 65535"),
        ("smtp://me:hunter2@mail.example.com:0", "the port must be a number from 1 to 65535"),
        # An unencoded / or ? in the password ends the host part early: the hint says what to do.
        ("smtp://me:hun/ter2@mail.example.com", "percent-encode any of @ : / ? #"),
        ("smtp://me:hun?ter2@mail.example.com", "percent-encode any of @ : / ? #"),
        ("smtp://me:hunter2@mail.example.com:587?tls=1", "query options are not supported"),
        ("smtp://me:hunter2@mail.example.com/inbox", "no path is expected"),
        ("smtp://me:hunter2@[mail.example.com", "cannot be parsed"),
    ],
)
def test_bad_urls_fail_naming_email_url_without_the_password(url, problem):
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_email_url(url)
    message = str(caught.value)
    assert message.startswith("EMAIL_URL is invalid: ")
    assert problem in message
    assert "ter2" not in message  # no part of any of the passwords above


@pytest.fixture
def mail_env(monkeypatch):
    for name in MAIL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_email_url_wins_over_the_separate_variables(mail_env):
    mail_env.setenv("EMAIL_URL", "smtp+tls://u:p@smtp.example.com")
    mail_env.setenv("EMAIL_HOST", "other.example.com")
    found = email_settings_from_env(debug=False, var_dir=Path("/v"))
    assert (found["EMAIL_HOST"], found["EMAIL_PORT"], found["EMAIL_USE_TLS"]) == ("smtp.example.com", 587, True)


def test_the_separate_variables(mail_env):
    mail_env.setenv("EMAIL_HOST", "smtp.example.com")
    mail_env.setenv("EMAIL_HOST_USER", "me")
    mail_env.setenv("EMAIL_HOST_PASSWORD", "p@ss word")
    mail_env.setenv("EMAIL_USE_TLS", "1")
    found = email_settings_from_env(debug=True, var_dir=Path("/v"))
    assert {k: found[k] for k in smtp("", 0)} == smtp("smtp.example.com", 587, "me", "p@ss word", tls=True)
    mail_env.setenv("EMAIL_PORT", "2525")
    assert email_settings_from_env(debug=True, var_dir=Path("/v"))["EMAIL_PORT"] == 2525
    mail_env.setenv("EMAIL_USE_TLS", "0")
    mail_env.setenv("EMAIL_USE_SSL", "yes")
    mail_env.delenv("EMAIL_PORT")
    found = email_settings_from_env(debug=True, var_dir=Path("/v"))
    assert (found["EMAIL_PORT"], found["EMAIL_USE_TLS"], found["EMAIL_USE_SSL"]) == (465, False, True)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("EMAIL_USE_TLS", "maybe", "EMAIL_USE_TLS must be a boolean"),
        ("EMAIL_PORT", "smtp", "EMAIL_PORT must be an integer"),
        ("EMAIL_PORT", "99999", "EMAIL_PORT must be from 1 to 65535"),
        ("EMAIL_USE_SSL", "1", "set one, not both"),  # with EMAIL_USE_TLS=1 below
        ("EMAIL_TIMEOUT", "0", "EMAIL_TIMEOUT must be at least 1"),
    ],
)
def test_bad_separate_variables_fail_at_startup(mail_env, name, value, problem):
    mail_env.setenv("EMAIL_HOST", "smtp.example.com")
    mail_env.setenv("EMAIL_USE_TLS", "1")
    mail_env.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=problem):
        email_settings_from_env(debug=False, var_dir=Path("/v"))


def test_without_mail_settings_debug_writes_files_under_var(mail_env, tmp_path):
    found = email_settings_from_env(debug=True, var_dir=tmp_path)
    assert found["EMAIL_BACKEND"] == FILE_BACKEND
    assert found["EMAIL_FILE_PATH"] == str(tmp_path / "mail")


def test_without_mail_settings_production_uses_smtp_on_localhost(mail_env):
    # Django's own EMAIL_HOST / EMAIL_PORT defaults (localhost:25) apply.
    found = email_settings_from_env(debug=False, var_dir=Path("/v"))
    assert found["EMAIL_BACKEND"] == SMTP_BACKEND
    assert "EMAIL_HOST" not in found and "EMAIL_PORT" not in found


def test_timeout_and_sender_defaults_and_overrides(mail_env):
    found = email_settings_from_env(debug=False, var_dir=Path("/v"))
    assert found["EMAIL_TIMEOUT"] == 10
    assert found["DEFAULT_FROM_EMAIL"] == found["SERVER_EMAIL"] == "Meterlog <meterlog@localhost>"
    mail_env.setenv("EMAIL_TIMEOUT", "3")
    mail_env.setenv("DEFAULT_FROM_EMAIL", "Usage <usage@example.com>")
    mail_env.setenv("SERVER_EMAIL", "errors@example.com")
    found = email_settings_from_env(debug=False, var_dir=Path("/v"))
    assert (found["EMAIL_TIMEOUT"], found["DEFAULT_FROM_EMAIL"], found["SERVER_EMAIL"]) == (
        3,
        "Usage <usage@example.com>",
        "errors@example.com",
    )
