"""The house rules the code map promises: producers don't import job code, role names live in one place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.jobs.catalog import JOBS
from appliance.nursery.roles import ROLES

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_enqueues_by_name_without_importing_job_code() -> None:
    probe = (
        "import sys\n"
        "from appliance.web.app import create_app\n"
        "from appliance.jobs.catalog import JOBS\n"
        "for name in JOBS.jobs: JOBS.lookup(name)\n"
        "loaded = sorted({spec.target.partition(':')[0] for spec in JOBS.jobs.values()} & set(sys.modules))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the API process imported job modules: {result.stdout}"


def test_every_declared_job_resolves_to_a_function_taking_a_context() -> None:
    for spec in JOBS.jobs.values():
        assert callable(spec.fn), spec.name
        assert next(iter(spec.signature.parameters)) == "ctx", spec.name


def test_role_names_are_spelled_in_one_module() -> None:
    spelled = []
    for path in (ROOT / "appliance").rglob("*.py"):
        if path.name == "roles.py":
            continue
        text = path.read_text()
        if all(f'"{name}"' in text for name in ROLES):
            spelled.append(str(path.relative_to(ROOT)))
    assert spelled == []
