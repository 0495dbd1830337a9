"""One typed settings object, read from /etc/appliance/appliance.env, ./.env and the environment.

Names are the plain ones operators already use (DESIGN.md). A setting that only one feature needs is
optional here; that feature calls :meth:`Settings.require`, which raises one clear error naming the
variable when the feature is used, never a traceback at import time.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECONDS = 1.0
SYSTEM_ENV_FILE = "/etc/appliance/appliance.env"


class SettingMissingError(RuntimeError):
    """A feature was used whose setting is not configured."""


def _readable(*paths: str) -> tuple[str, ...]:
    # Under systemd the root-only env file reaches us through EnvironmentFile=; the unprivileged service
    # user cannot open it itself, and that must not stop it from starting.
    return tuple(p for p in paths if not os.path.exists(p) or os.access(p, os.R_OK))


class Settings(BaseSettings):
    # Later env files win; the environment beats both.
    model_config = SettingsConfigDict(
        env_file=_readable(SYSTEM_ENV_FILE, ".env"), env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "postgresql+psycopg:///appliance"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "appliance:"
    bind_host: str = "0.0.0.0"
    api_port: int = 5000
    media_port: int = 5050
    workers: int = 2
    # Processes of the api and media roles sharing their port (SO_REUSEPORT); media: one a core by default.
    api_processes: int = Field(default=1, ge=1)
    media_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Jobs here wait on I/O (HTTP to WhatsApp, Twilio, OpenAI; Redis; PostgreSQL) far longer than they compute:
    # with ~10 ms of waiting a job, 32 at once allow 3,200 jobs/s a worker, above what one worker's CPU
    # dispatches, so the CPU and not this cap is the limit; sync jobs' threads stay under trio's 40.
    job_concurrency: int = 32
    shutdown_grace: float = 30 * SECONDS
    job_lease: float = 30 * SECONDS
    db_pool_size: int = 10
    # A dead or hung PostgreSQL becomes a 503 within seconds (appliance/db.py): connecting, each statement
    # (server-side), waiting for a pooled connection, and each Database.run call as a whole are bounded.
    db_connect_timeout: float = 3 * SECONDS
    db_statement_timeout: float = 5 * SECONDS
    db_pool_timeout: float = 5 * SECONDS
    db_call_timeout: float = 6 * SECONDS
    session_ttl: float = 14 * 24 * 3600 * SECONDS
    session_cookie_secure: bool = True
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    # Supervisor (``appliance up``): each child must say READY within the start timeout and WATCHDOG=1
    # within the watchdog interval; RESTART_BURST restarts within RESTART_WINDOW mark a role failed.
    supervisor_start_timeout: float = 60 * SECONDS
    supervisor_watchdog: float = 10 * SECONDS
    restart_burst: int = 5
    restart_window: float = 60 * SECONDS

    internal_secret: SecretStr | None = None
    encryption_key: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None
    public_url: str | None = None
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_redirect_uri: str | None = None
    baileys_url: str | None = None
    whatsapp_store_own: bool = False  # store messages the business sent from its own phone
    data_dir: Path = Path("/var/lib/appliance")
    media_idle_timeout: float = 30 * SECONDS
    voice_agent: str = "echo"
    realtime_url: str = "wss://api.openai.com/v1/realtime?model=gpt-realtime"  # GA protocol, no OpenAI-Beta
    realtime_api_key: SecretStr | None = None
    realtime_instructions: str | None = None  # a business's agent_instructions win
    realtime_transcribe_model: str = "gpt-4o-mini-transcribe"
    # The media role's voice agents by name ("module:function" factories, resolved when the role starts).
    voice_agents: dict[str, str] = {"echo": "appliance.media.agents:echo_agent",
                                    "realtime": "appliance.agent.phone:realtime_agent"}
    agent_silence_timeout: float = 20 * SECONDS  # per call; a business's agent_silence_seconds wins
    agent_max_duration: float = 600 * SECONDS  # per call; a business's agent_max_call_seconds wins
    twilio_account_sid: str | None = None  # Twilio REST (call transfer, spoken fallback)
    twilio_api_url: str = "https://api.twilio.com"
    llm_base_url: str = "https://api.openai.com/v1"  # any OpenAI-compatible chat completions API
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 20 * SECONDS
    llm_max_retries: int = 2  # on connection errors, 408, 409, 429 and 5xx, with backoff (openai client)
    # Receipts (Gmail): DESIGN.md "Receipts (Gmail)". Tests point the three URLs at a local fake Google.
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    gmail_api_url: str = "https://gmail.googleapis.com/"
    chromium_path: str = "/usr/bin/chromium"
    gmail_quota_units: float = 240.0  # per second per mailbox; Gmail allows 250 (a message read costs 5)
    receipts_sync_slice: float = 240 * SECONDS  # a sync job hands over to a follow-up job after this long
    receipts_max_attachment_bytes: int = 20 * 1024 * 1024
    receipts_previews: bool = True  # enqueue the previews jobs for each new receipt
    preview_render_deadline: float = 20 * SECONDS  # one email in Chromium; the render process is killed after
    preview_pdf_deadline: float = 10 * SECONDS  # one PDF thumbnail in PDFium; likewise

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # Operators of the original system write plain postgresql:// URLs; we always drive psycopg 3.
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                return "postgresql+psycopg://" + value[len(plain) :]
        return value

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_in_namespace(cls, value: str) -> str:
        if not value.startswith("appliance:"):
            raise ValueError("REDIS_PREFIX must start with 'appliance:'")
        return value if value.endswith(":") else value + ":"

    def require(self, name: str) -> Any:
        """The value of setting ``name``, or a :class:`SettingMissingError` naming its variable."""
        value = getattr(self, name)
        if value in (None, ""):
            raise SettingMissingError(f"{name.upper()} is not set; add it to {SYSTEM_ENV_FILE} or the environment")
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    def secrets(self, name: str) -> list[str]:
        """A webhook secret that may be rotated (``INTERNAL_SECRET``, ``TWILIO_AUTH_TOKEN``): a comma-separated
        list, the first current (used to sign and send), every one accepted on what arrives. Rotate by
        setting ``new,old``, then, once every sender has the new one, ``new``."""
        values = [part.strip() for part in str(self.require(name)).split(",") if part.strip()]
        if not values:
            raise SettingMissingError(f"{name.upper()} is empty; add it to {SYSTEM_ENV_FILE} or the environment")
        return values

    def masked(self) -> dict[str, str]:
        """Effective settings for display, secrets and URL passwords masked."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********" if value.get_secret_value() else ""
            elif value is None:
                text = ""
            else:
                text = _mask_url_password(str(value))
            shown[name.upper()] = text
        return shown


def _mask_url_password(text: str) -> str:
    if "://" not in text or "@" not in text:
        return text
    scheme, rest = text.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":********"
    return f"{scheme}://{creds}@{host}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
