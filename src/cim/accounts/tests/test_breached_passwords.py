"""Breached passwords (ASVS 5.0 V6.2.12): a real sorted Pwned Passwords file searched by binary search, the deploy
check of that file, the range API on a loopback server, the password-change page and `cim passwords check`."""

import hashlib
import io
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from cim.accounts.checks import check_pwned_passwords_file
from cim.accounts.passwords import (
    BreachedPasswordValidator,
    password_sha1,
    pwned_api_count,
    pwned_file_count,
    pwned_file_problem,
    pwned_file_summary,
)
from cim.accounts.roles import Role

PASSWORD = "Correct-Horse-42"  # the users' current password (conftest)
LISTED = "Purple-Monkey-Dishwasher-2024"  # long, not common, not like a username: only the breach check refuses it
UNLISTED = "seven quiet otters rowed to Xiamen at dawn"
FILLERS = [f"filler-{i}" for i in range(300)]  # unrelated entries around the listed ones
COUNTS = [1, 7, 42, 960, 31_000, 2_412_345]  # lines of different lengths, as in the real file


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest().upper()


def _entries(passwords: list[str]) -> list[tuple[str, int, str]]:
    """(hash, count, password) sorted by hash, as haveibeenpwned-downloader writes them."""
    return sorted((sha1(p), COUNTS[i % len(COUNTS)], p) for i, p in enumerate(passwords))


def _write(path, entries, newline: str = "\r\n", final_newline: bool = True):
    text = newline.join(f"{h}:{c}" for h, c, _ in entries) + (newline if final_newline else "")
    path.write_bytes(text.encode("ascii"))
    return path


def assert_breached(validate, password: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate(password)
    assert [e.code for e in refused.value.error_list] == ["password_breached"]


@pytest.fixture
def entries():
    return _entries([*FILLERS, LISTED])


@pytest.fixture
def pwned_file(tmp_path, entries, settings):
    path = _write(tmp_path / "pwnedpasswords.txt", entries)
    settings.CIM_PWNED_PASSWORDS_FILE = str(path)
    settings.CIM_PWNED_PASSWORDS_API = ""
    return path


# The file


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_every_line_is_found_with_its_count_and_nothing_else(tmp_path, entries, newline, final_newline):
    path = str(_write(tmp_path / "p.txt", entries, newline, final_newline))
    for h, count, _ in entries:
        assert pwned_file_count(path=path, sha1=h) == count, h
    # The edges of the binary search: the first and the last line.
    assert pwned_file_count(path=path, sha1=entries[0][0]) == entries[0][1]
    assert pwned_file_count(path=path, sha1=entries[-1][0]) == entries[-1][1]
    for i in range(300):
        assert pwned_file_count(path=path, sha1=sha1(f"absent-{i}")) == 0
    # Before the first and after the last hash.
    assert pwned_file_count(path=path, sha1="0" * 40) == 0
    assert pwned_file_count(path=path, sha1="F" * 40) == 0


def test_a_listed_password_is_refused_and_an_unlisted_passphrase_accepted(pwned_file, entries):
    assert_breached(validate_password, LISTED)
    validate_password(UNLISTED)  # no exception
    # The first and last lines' passwords, through the validator itself.
    for _, _, password in (entries[0], entries[-1]):
        assert_breached(BreachedPasswordValidator().validate, password)


def test_without_a_file_or_api_nothing_is_refused(settings):
    settings.CIM_PWNED_PASSWORDS_FILE = settings.CIM_PWNED_PASSWORDS_API = ""
    BreachedPasswordValidator().validate(LISTED)


def test_an_unreadable_file_refuses_nothing_and_logs_no_password(settings, tmp_path, caplog):
    settings.CIM_PWNED_PASSWORDS_FILE = str(tmp_path / "missing.txt")
    settings.CIM_PWNED_PASSWORDS_API = ""
    with caplog.at_level(logging.ERROR, logger="cim.accounts.passwords"):
        BreachedPasswordValidator().validate(LISTED)
    assert "missing.txt" in caplog.text and "check --deploy" in caplog.text
    assert LISTED not in caplog.text and sha1(LISTED) not in caplog.text
    (tmp_path / "empty.txt").write_bytes(b"")
    settings.CIM_PWNED_PASSWORDS_FILE = str(tmp_path / "empty.txt")
    BreachedPasswordValidator().validate(LISTED)


def test_the_summary_names_first_and_last_hash_and_about_how_many(pwned_file, entries):
    summary = pwned_file_summary(str(pwned_file))
    assert summary["first"] == entries[0][0] and summary["last"] == entries[-1][0]
    assert summary["bytes"] == pwned_file.stat().st_size
    assert 0.8 * len(entries) < summary["entries_estimate"] < 1.25 * len(entries)


def test_help_text_in_both_languages():
    from django.utils import translation

    with translation.override("en"):
        assert BreachedPasswordValidator().get_help_text() == (
            "Your password can’t be one that has appeared in data breaches."
        )
    with translation.override("zh-hans"):
        assert "数据泄露" in BreachedPasswordValidator().get_help_text()


# The deploy check


def _problem_files(tmp_path, entries) -> dict[str, tuple]:
    good = [f"{h}:{c}" for h, c, _ in entries]
    ntlm = sorted(f"{hashlib.md5(p.encode()).hexdigest().upper()}:1" for p in FILLERS)
    return {
        "missing.txt": (None, "cannot be read"),
        "empty.txt": ("", "is empty"),
        "lower.txt": ("\r\n".join(line.lower() for line in good), "not a Pwned Passwords SHA-1 file"),
        "ntlm.txt": ("\r\n".join(ntlm), "NTLM"),
        "unsorted.txt": ("\r\n".join(reversed(good)), "not sorted"),
        "text.txt": ("\r\n".join(["password", "123456", *good]), "not a Pwned Passwords SHA-1 file"),
        "last-line.txt": ("\r\n".join([*good, "ZZZ"]), "not a Pwned Passwords SHA-1 file"),
    }


def test_a_malformed_or_missing_file_is_a_deploy_check_error(tmp_path, entries, settings):
    for name, (text, reason) in _problem_files(tmp_path, entries).items():
        if text is not None:
            (tmp_path / name).write_text(text)
        settings.CIM_PWNED_PASSWORDS_FILE = str(tmp_path / name)
        errors = check_pwned_passwords_file()
        assert [e.id for e in errors] == ["cim.accounts.E001"], name
        assert reason in errors[0].msg, (name, errors[0].msg)
        assert pwned_file_problem(str(tmp_path / name)) is not None
    tmp_path.joinpath("lf.txt").write_text("\n".join(f"{h}:{c}" for h, c, _ in entries) + "\n")
    for good in (_write(tmp_path / "good.txt", entries), tmp_path / "lf.txt"):
        settings.CIM_PWNED_PASSWORDS_FILE = str(good)
        assert check_pwned_passwords_file() == []
    settings.CIM_PWNED_PASSWORDS_FILE = ""
    assert check_pwned_passwords_file() == []


@pytest.mark.django_db
def test_cim_check_deploy_names_the_file(tmp_path, settings):
    (tmp_path / "ntlm.txt").write_text("8846F7EAEE8FB117AD06BDD830B7586C:1\r\n")
    settings.CIM_PWNED_PASSWORDS_FILE = str(tmp_path / "ntlm.txt")
    stderr = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check", "--deploy", "--tag", "cim", stdout=io.StringIO(), stderr=stderr)
    assert "cim.accounts.E001" in stderr.getvalue() and "NTLM" in stderr.getvalue()


# The password-change page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "message"),
    [("en", "This password has appeared in data breaches"), ("zh-hans", "该密码曾出现在数据泄露中")],
)
def test_the_password_change_page_refuses_a_breached_password(pwned_file, users, language, message):
    user = users[Role.SALES]
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    url = reverse("account_change_password")
    response = client.post(url, {"oldpassword": PASSWORD, "password1": LISTED, "password2": LISTED})
    assert response.status_code == 200 and message in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)

    response = client.post(url, {"oldpassword": PASSWORD, "password1": UNLISTED, "password2": UNLISTED})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(UNLISTED)


# The range API, on a loopback server that answers as api.pwnedpasswords.com does


ONLINE = "Velvet-Thunder-Orchard-77"  # listed by the API only
PADDED = "Copper-Kettle-Morning-Song"  # its suffix comes back as padding, count 0: not a breach


class RangeServer(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.requests: list[tuple[str, str | None]] = []
        self.status = 200
        self.listed = {sha1(ONLINE): 3_861_493, sha1(LISTED): 12}
        self.padding = [sha1(PADDED), *(sha1(f"pad-{i}") for i in range(50))]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/range/"


class RangeHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server: RangeServer = self.server  # type: ignore[assignment]
        server.requests.append((self.path, self.headers.get("Add-Padding")))
        prefix = self.path.rsplit("/", 1)[-1].upper()
        lines = [f"{h[5:]}:{c}" for h, c in server.listed.items() if h.startswith(prefix)]
        # Padding: fake suffixes with count 0, among them the padded password's own.
        lines += [f"{h[5:]}:0" for h in server.padding if self.headers.get("Add-Padding") == "true"]
        body = "\r\n".join(sorted(lines)).encode()
        self.send_response(server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def range_api(settings):
    server = RangeServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CIM_PWNED_PASSWORDS_FILE = ""
    settings.CIM_PWNED_PASSWORDS_API = server.url
    yield server
    server.shutdown()
    server.server_close()


def test_online_a_listed_password_is_refused_sending_only_five_hex_digits(range_api):
    assert_breached(validate_password, ONLINE)
    full = sha1(ONLINE)
    assert range_api.requests == [(f"/range/{full[:5]}", "true")]
    assert pwned_api_count(url=range_api.url, sha1=full) == 3_861_493


def test_online_padding_and_unlisted_passwords_are_accepted(range_api):
    validate_password(PADDED)  # its suffix is in the answer, with count 0
    validate_password(UNLISTED)
    assert pwned_api_count(url=range_api.url, sha1=sha1(PADDED)) == 0
    assert len(range_api.requests) == 3


def test_online_a_service_that_is_down_or_failing_refuses_nothing(range_api, settings, caplog):
    range_api.status = 503
    with caplog.at_level(logging.WARNING, logger="cim.accounts.passwords"):
        validate_password(ONLINE)
    assert pwned_api_count(url=range_api.url, sha1=sha1(ONLINE)) is None

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/range/"
    settings.CIM_PWNED_PASSWORDS_API = closed
    with caplog.at_level(logging.WARNING, logger="cim.accounts.passwords"):
        validate_password(ONLINE)
    assert "Pwned Passwords API unreachable (HTTPStatusError)" in caplog.text
    assert "Pwned Passwords API unreachable (ConnectError)" in caplog.text
    assert ONLINE not in caplog.text and sha1(ONLINE)[:5] not in caplog.text


def test_file_and_api_together(pwned_file, range_api, settings):
    settings.CIM_PWNED_PASSWORDS_FILE = str(pwned_file)
    assert_breached(validate_password, LISTED)
    assert range_api.requests == []  # found in the file: the service is not asked
    assert_breached(validate_password, ONLINE)  # not in the file, listed online
    assert len(range_api.requests) == 1


# `cim passwords check`


def _check(monkeypatch, password: str, *args: str) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    out = io.StringIO()
    call_command("passwords", "check", *args, stdout=out)
    return out.getvalue()


def test_cli_says_whether_a_password_is_breached_and_describes_the_file(pwned_file, entries, monkeypatch):
    out = _check(monkeypatch, LISTED)
    assert f"{entries[0][0]} … {entries[-1][0]}" in out
    assert out.strip().splitlines()[-1] == "Breached: listed by the file."
    assert LISTED not in out and sha1(LISTED) not in out
    assert _check(monkeypatch, UNLISTED).strip().splitlines()[-1] == "Not found in breached passwords."
    data = json.loads(_check(monkeypatch, "", "--json").strip().splitlines()[-1])
    assert data["file_summary"]["first"] == entries[0][0] and "breached" not in data


def test_cli_with_the_api_and_with_nothing_configured(range_api, settings, monkeypatch):
    data = json.loads(_check(monkeypatch, ONLINE, "--json").strip().splitlines()[-1])
    assert data["breached"] is True and data["api_count"] == 3_861_493 and data["file_count"] is None
    range_api.status = 503
    with pytest.raises(CommandError, match="could not be asked"):
        _check(monkeypatch, ONLINE)
    settings.CIM_PWNED_PASSWORDS_API = ""
    with pytest.raises(CommandError, match="Neither"):
        _check(monkeypatch, ONLINE)


def test_cli_fails_on_a_malformed_file(tmp_path, settings, monkeypatch):
    (tmp_path / "bad.txt").write_text("not a hash\n")
    settings.CIM_PWNED_PASSWORDS_FILE = str(tmp_path / "bad.txt")
    with pytest.raises(CommandError, match="not a Pwned Passwords SHA-1 file"):
        _check(monkeypatch, LISTED)


def test_the_password_sha1_is_upper_case_hex():
    assert password_sha1("password") == "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
