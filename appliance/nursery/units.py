"""systemd unit files for this install: one supervised unit, or one unit per role, grouped by a target.

``appliance systemd install`` renders them with this install's executable, data directory and grace and
writes them to ``--prefix``. The copies in the repository's ``systemd/`` folder are the same rendering for
``/opt/appliance/.venv/bin/appliance`` (a test keeps them in step).

The two shapes conflict with each other so they never fight over the API and media ports: starting
``appliance.service`` stops the per-role units and the other way round.
"""

from __future__ import annotations

import sys
from pathlib import Path

from appliance.nursery.roles import REPLICATED, SINGLE
from appliance.settings import SYSTEM_ENV_FILE, Settings

DEFAULT_EXECUTABLE = "/opt/appliance/.venv/bin/appliance"
WATCHDOG_SEC = 30


def _hardening(data_dir: Path) -> str:
    state = "StateDirectory=appliance\n" if data_dir == Path("/var/lib/appliance") else ""
    return (
        "User=appliance\nGroup=appliance\n"
        f"EnvironmentFile={SYSTEM_ENV_FILE}\n"
        f"{state}ReadWritePaths={data_dir}\n"
        "NoNewPrivileges=yes\nPrivateTmp=yes\nPrivateDevices=yes\n"
        "ProtectSystem=strict\nProtectHome=read-only\n"
        "ProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectControlGroups=yes\n"
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\nRestrictSUIDSGID=yes\n"
        "RestrictRealtime=yes\nLockPersonality=yes\nCapabilityBoundingSet=\n"
    )


def _service(description: str, exec_start: str, settings: Settings, *, extra_unit: str = "",
             install: str = "WantedBy=appliance.target\n") -> str:
    stop_timeout = int(settings.shutdown_grace) + 15  # roles drain within the grace; then systemd kills
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "After=network-online.target postgresql.service redis-server.service\n"
        "Wants=network-online.target\n"
        "PartOf=appliance.target\n"
        f"{extra_unit}"
        "StartLimitIntervalSec=300\nStartLimitBurst=5\n"
        "\n[Service]\n"
        "Type=notify\nNotifyAccess=main\n"
        f"ExecStart={exec_start}\n"
        f"WatchdogSec={WATCHDOG_SEC}\n"
        "TimeoutStartSec=120\n"
        f"TimeoutStopSec={stop_timeout}\n"
        "KillMode=mixed\n"  # SIGTERM to the main process only; its children get SIGKILL after the timeout
        "Restart=on-failure\nRestartSec=2\n"
        "SyslogIdentifier=appliance\n"
        f"{_hardening(settings.data_dir)}"
        "\n[Install]\n"
        f"{install}"
    )


def render(settings: Settings, executable: str) -> dict[str, str]:
    """File name -> contents of every unit."""
    per_role = " ".join(f"appliance-{role}.service" for role in SINGLE)
    units = {
        "appliance.target": (
            "[Unit]\nDescription=appliance: AI phone line, WhatsApp inbox and receipts CRM\n"
            "After=network-online.target\nWants=network-online.target\n"
            "\n[Install]\nWantedBy=multi-user.target\n"
        ),
        "appliance.service": _service(
            "appliance supervisor (every role as a supervised child)", f"{executable} up", settings,
            extra_unit=f"Conflicts={per_role}\n",
            install="WantedBy=appliance.target\n",
        ),
    }
    # One process per instance of a template unit (appliance-media@1 .. @MEDIA_PROCESSES); each instance
    # conflicts with the supervised unit, which systemd applies both ways.
    for role in REPLICATED:
        units[f"appliance-{role}@.service"] = _service(
            f"appliance {role} process %i", f"{executable} {role}", settings,
            extra_unit="Conflicts=appliance.service\n",
        )
    for role in SINGLE:
        units[f"appliance-{role}.service"] = _service(
            f"appliance {role} role", f"{executable} {role}", settings, extra_unit="Conflicts=appliance.service\n",
        )
    return dict(sorted(units.items()))


def sysusers(settings: Settings) -> str:
    """The sysusers.d line that creates the unprivileged ``appliance`` user the units run as."""
    return f'u appliance - "appliance service" {settings.data_dir}\n'


def install(settings: Settings, prefix: str, sysusers_dir: str, executable: str | None = None) -> list[Path]:
    """Write the units under ``prefix`` and ``appliance.conf`` under ``sysusers_dir``."""
    executable = executable or str(Path(sys.argv[0]).resolve())
    files = {Path(prefix) / name: text for name, text in render(settings, executable).items()}
    files[Path(sysusers_dir) / "appliance.conf"] = sysusers(settings)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)
