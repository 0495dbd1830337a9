"""Chromium's own sandbox stays on under the worker's systemd unit.

The unit runs the worker as the unprivileged ``appliance`` user with ``ProtectSystem=strict``,
``PrivateTmp=yes``, ``NoNewPrivileges=yes`` and an empty ``CapabilityBoundingSet=``. systemd is not PID 1
here, so the test builds the same confinement by hand (a mount namespace with a read-only root, the data
directory writable, a private /tmp; then an unprivileged user with no capabilities and no new privileges)
and renders an email in it: Chromium must start without ``--no-sandbox`` and its renderers must sit in
a PID namespace of their own (the namespace sandbox).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.nursery.units import render
from appliance.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
PROBE = """
import json, os
from appliance.previews import chromium

def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:  # a thread or process that ended while we looked
        return b"" if "b" in mode else ""

rendered = chromium.render("/usr/bin/chromium", chromium.RenderRequest("<h1 style='color:#c00'>sandboxed</h1>"))
procs, todo = [], [os.getpid()]
while todo:
    pid = todo.pop()
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        for child in read(f"/proc/{pid}/task/{task}/children").split():
            todo.append(int(child))
            cmdline = read(f"/proc/{child}/cmdline", "rb").replace(b"\\0", b" ").decode("utf-8", "replace")
            nspid = [l for l in read(f"/proc/{child}/status").splitlines() if l.startswith("NSpid:")]
            procs.append({"cmdline": cmdline, "pid_namespaces": len(nspid[0].split()) - 1 if nspid else 0})
chromium._shutdown()
print(json.dumps({"uid": os.geteuid(), "png": len(rendered.png), "procs": procs}))
"""


def test_worker_unit_keeps_what_chromium_needs():
    unit = render(Settings(_env_file=None), "/opt/appliance/.venv/bin/appliance")["appliance-worker@.service"]
    lines = set(unit.splitlines())
    for line in ("User=appliance", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=", "ReadWritePaths=/var/lib/appliance"):
        assert line in lines
    # The sandbox makes user and PID namespaces; V8 and Playwright's Node need writable+executable memory.
    for forbidden in ("RestrictNamespaces=", "PrivateUsers=", "MemoryDenyWriteExecute=yes", "SystemCallFilter="):
        assert not any(line.startswith(forbidden) for line in lines), forbidden


@pytest.mark.slow
def test_chromium_renders_sandboxed_as_the_unit_confines_the_worker(tmp_path):
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.fail("needs root and util-linux (unshare, setpriv) to build the unit's confinement")
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, NOBODY, NOBODY)
    os.chmod(tmp_path, 0o755)
    (tmp_path / "probe.py").write_text(PROBE)
    os.chmod(tmp_path / "probe.py", 0o644)
    confine = (
        'mount --bind "$DATA" /mnt && mount --bind "$REPO" /srv && mount --bind "$PROBE_DIR" /opt'
        " && mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp && mount -o remount,bind,ro /"
        f" && HOME=/mnt PYTHONPATH=/srv exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups"
        f' --no-new-privs --bounding-set=-all --inh-caps=-all "$PYTHON" /opt/probe.py'
    )
    # The checkout (and a venv inside it) may itself live under /tmp, which the confinement hides: run the
    # interpreter through the checkout's bind mount at /srv when it is inside it.
    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = Path("/srv") / python.relative_to(ROOT)
    env = {"PATH": os.environ["PATH"], "DATA": str(data), "REPO": str(ROOT), "PROBE_DIR": str(tmp_path),
           "PYTHON": str(python)}
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", confine],
                            env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["uid"] == NOBODY and seen["png"] > 1000
    chromium = [p for p in seen["procs"] if "chromium" in p["cmdline"]]
    assert chromium and not any("--no-sandbox" in p["cmdline"] for p in chromium)
    # Renderers are forked by the sandboxed zygote, which lives in a PID namespace of its own.
    zygotes = [p for p in chromium if "--type=zygote" in p["cmdline"] and "--no-zygote-sandbox" not in p["cmdline"]]
    assert zygotes and all(p["pid_namespaces"] >= 2 for p in zygotes)
