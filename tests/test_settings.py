from __future__ import annotations

import pytest

from appliance.cli import main
from appliance.settings import SettingMissingError, Settings


def test_sources_names_and_priority(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("API_PORT=6001\nWORKERS=5\nTWILIO_AUTH_TOKEN=from-file\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKERS", "7")
    settings = Settings()
    assert settings.api_port == 6001 and settings.workers == 7
    assert settings.require("twilio_auth_token") == "from-file"


def test_plain_postgres_urls_use_psycopg():
    assert Settings(_env_file=None, database_url="postgresql://u@h/db").database_url == "postgresql+psycopg://u@h/db"


def test_missing_setting_names_the_variable():
    with pytest.raises(SettingMissingError, match="BAILEYS_URL is not set"):
        Settings(_env_file=None).require("baileys_url")


def test_config_show_masks_secrets(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTERNAL_SECRET", "hunter2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pa55word@db/appliance")
    from appliance.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["config", "show"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "INTERNAL_SECRET=********" in out and "hunter2" not in out
    assert "DATABASE_URL=postgresql+psycopg://app:********@db/appliance" in out and "pa55word" not in out
