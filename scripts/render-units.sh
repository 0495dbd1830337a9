#!/usr/bin/env bash
# Re-render systemd/ (the unit files for the default install at /opt/appliance) after changing units.py.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python - <<'PY'
from pathlib import Path
from appliance.nursery.units import DEFAULT_EXECUTABLE, render, sysusers
from appliance.settings import Settings
defaults = Settings(_env_file=None, shutdown_grace=30, data_dir=Path("/var/lib/appliance"))
out = Path("systemd")
out.mkdir(exist_ok=True)
for name, text in (render(defaults, DEFAULT_EXECUTABLE) | {"appliance.sysusers.conf": sysusers(defaults)}).items():
    (out / name).write_text(text)
    print(out / name)
PY
