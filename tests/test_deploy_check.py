"""`cim check --deploy` with production settings, on a freshly migrated installation: zero warnings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CIM = Path(sys.executable).parent / "cim"

pytestmark = pytest.mark.skipif(bool(os.environ.get("CIM_DATABASE_URL")), reason="runs once, in the SQLite pass")


def _cim(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CIM), *args], env=env, capture_output=True, text=True)


def test_a_production_configuration_passes_every_deployment_check(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(tmp_path),
        "CIM_HTTPS": "true",
        "CIM_DEBUG": "false",
        "CIM_ALLOWED_HOSTS": "cim.example.com",
        "CIM_AUDIT_KEY": "k" * 48,
    }
    assert _cim(env, "migrate", "--no-input", "-v0").returncode == 0
    # A production installation has a recent, verified backup.
    assert _cim(env, "backup", "create").returncode == 0
    assert _cim(env, "backup", "verify", "--latest").returncode == 0
    done = _cim(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout + done.stderr


def test_the_development_defaults_are_named_by_the_deployment_checks(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cim.config.settings", "CIM_DATA_DIR": str(tmp_path)}
    assert _cim(env, "migrate", "--no-input", "-v0").returncode == 0
    done = _cim(env, "check", "--deploy")
    output = done.stdout + done.stderr
    assert "security.W004" in output  # no HSTS over plain HTTP
    assert "cim.audit.W003" in output  # the audit key next to the database
    assert "cim.E012" in output  # no backup yet


def test_a_breached_passwords_file_that_is_not_there_is_an_error(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(tmp_path),
        "CIM_PWNED_PASSWORDS_FILE": str(tmp_path / "pwnedpasswords.txt"),  # not downloaded
    }
    done = _cim(env, "check", "--deploy", "--tag", "cim")
    assert done.returncode == 1
    assert "cim.accounts.E001" in done.stderr and "pwnedpasswords.txt cannot be read" in done.stderr
