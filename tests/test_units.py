from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.nursery.units import DEFAULT_EXECUTABLE, render, sysusers
from appliance.settings import Settings

REPO_UNITS = Path(__file__).resolve().parent.parent / "systemd"


def _defaults() -> Settings:
    return Settings(_env_file=None, shutdown_grace=30, data_dir=Path("/var/lib/appliance"))


def test_repository_copies_are_the_rendering_for_the_default_install():
    expected = render(_defaults(), DEFAULT_EXECUTABLE) | {"appliance.sysusers.conf": sysusers(_defaults())}
    found = {p.name: p.read_text() for p in REPO_UNITS.iterdir() if p.is_file()}
    assert found == expected, "systemd/ is stale: run scripts/render-units.sh"


def test_install_writes_units_that_systemd_analyze_accepts(tmp_path, monkeypatch, capsys):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: scripts/setup.sh --tests installs Debian's systemd package")
    executable = str(Path(sys.executable).with_name("appliance"))
    monkeypatch.setenv("SHUTDOWN_GRACE", "20")
    code = main(["systemd", "install", "--prefix", str(tmp_path / "units"),
                 "--sysusers-dir", str(tmp_path / "sysusers"), "--executable", executable])
    assert code == 0
    units = sorted(p.name for p in (tmp_path / "units").iterdir())
    assert units == ["appliance-api@.service", "appliance-media@.service", "appliance-scheduler.service",
                     "appliance-worker@.service", "appliance.service", "appliance.target"]
    supervisor = (tmp_path / "units" / "appliance.service").read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure",
                 "TimeoutStopSec=35", f"ExecStart={executable} up", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "EnvironmentFile=/etc/appliance/appliance.env",
                 "Conflicts=appliance-scheduler.service"):
        assert line in supervisor.splitlines()
    for role in ("api", "media", "worker"):  # one process per instance; api and media instances share the port
        template = (tmp_path / "units" / f"appliance-{role}@.service").read_text().splitlines()
        assert f"ExecStart={executable} {role}" in template and "Conflicts=appliance.service" in template
    assert (tmp_path / "sysusers" / "appliance.conf").read_text().startswith("u appliance ")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], cwd=tmp_path / "units",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "systemctl enable --now appliance.service" in capsys.readouterr().out
