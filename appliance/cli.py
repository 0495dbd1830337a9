"""The ``appliance`` command line: roles, the supervisor, migrations, accounts, jobs, load tests, systemd units."""

from __future__ import annotations

import argparse
import faulthandler
import getpass
import json
import logging
import sys
from collections.abc import Callable

import trio

from appliance import logs
from appliance.nursery.roles import ROLES
from appliance.settings import SettingMissingError, Settings, get_settings

log = logging.getLogger("appliance")


def _role(name: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from appliance.nursery.role import run_role
        trio.run(run_role, name, ROLES[name], settings)
        return 0

    return run


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.nursery.supervisor import supervise

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    return trio.run(supervise, settings, roles)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from appliance import migrate

    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at {args.revision}")
    return 0


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.accounts import store as accounts
    from appliance.db import Database

    password = args.password
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("password (empty for token-only): ") or None
    db = Database(settings.database_url, 1)
    try:
        user = db.run_sync(accounts.create_user, args.business, args.email, password)
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"user {user.email} (id {user.id}) in business id {user.business_id}")
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.accounts import store as accounts
    from appliance.db import Database

    db = Database(settings.database_url, 1)
    try:
        print(db.run_sync(accounts.create_api_token, args.email))
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


AGENT_OPTIONS = {"instructions": "agent_instructions", "greeting": "agent_greeting", "voice": "agent_voice",
                 "transfer_number": "transfer_number", "voice_agent": "voice_agent", "reply_mode": "auto_reply_mode",
                 "reply_text": "auto_reply_text", "silence": "agent_silence_seconds",
                 "max_call": "agent_max_call_seconds"}


def cmd_agent(args: argparse.Namespace, settings: Settings) -> int:
    """Show or change a business's AI agent settings (the same validation as PATCH /api/settings)."""
    from pydantic import ValidationError

    from appliance.accounts import business
    from appliance.db import Database

    changes: dict[str, object] = {column: getattr(args, option) for option, column in AGENT_OPTIONS.items()
                                  if getattr(args, option, None) is not None}
    if getattr(args, "tools", None) is not None:
        changes["agent_tools"] = [t for t in args.tools.split(",") if t]
    db = Database(settings.database_url, 1)
    try:
        if args.action == "set":
            patch = business.SettingsPatch.model_validate(changes)
            found = db.run_sync(business.update_settings, args.business, patch)
        else:
            found = db.run_sync(business.get_settings, args.business)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    if found is None:
        print(f"error: no business {args.business}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, default=str))
    return 0


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    for name, value in settings.masked().items():
        print(f"{name}={value}")
    return 0


def cmd_enqueue(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.jobs.cli import enqueue

    return trio.run(enqueue, settings, args.job, args.queue, args.arg, args.delay)


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.jobs.cli import jobs_command

    return trio.run(jobs_command, settings, args.action, args.id)


def cmd_systemd_install(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.nursery.units import install

    for path in install(settings, args.prefix, args.sysusers_dir, args.executable):
        print(f"wrote {path}")
    print("next: systemd-sysusers && systemctl daemon-reload && systemctl enable --now appliance.service")
    return 0


def cmd_loadtest(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.loadtest import run

    report = trio.run(run, settings, args)
    print(json.dumps(report, indent=2))
    return 0


def cmd_receipts(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.receipts import cli

    if args.action == "sync":
        return trio.run(cli.sync_command, settings, args.business, args.mode)
    return trio.run(cli.status_command, settings)


def cmd_previews(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.previews import cli

    return trio.run(cli.rebuild_command, settings, args.business)


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from appliance.receipts import cli

    if args.action == "generate":
        print(cli.generate_key())
        return 0
    return trio.run(cli.rotate_command, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="supervisor in the foreground")
    up.add_argument("--roles", default=",".join(ROLES))
    up.set_defaults(fn=cmd_up)
    for role in ROLES:
        sub.add_parser(role, help=f"the {role} role in the foreground").set_defaults(fn=_role(role))

    mig = sub.add_parser("migrate", help="Alembic upgrade to head")
    mig.add_argument("revision", nargs="?", default="head")
    mig.set_defaults(fn=cmd_migrate)

    user = sub.add_parser("user").add_subparsers(dest="action", required=True)
    uc = user.add_parser("create", help="bootstrap a tenant and its first user")
    uc.add_argument("--business", required=True)
    uc.add_argument("--email", required=True)
    uc.add_argument("--password")
    uc.set_defaults(fn=cmd_user_create)

    token = sub.add_parser("token").add_subparsers(dest="action", required=True)
    tc = token.add_parser("create", help="print an API token for Authorization: Bearer")
    tc.add_argument("--email", required=True)
    tc.set_defaults(fn=cmd_token_create)

    config = sub.add_parser("config").add_subparsers(dest="action", required=True)
    config.add_parser("show", help="effective settings, secrets masked").set_defaults(fn=cmd_config_show)

    enq = sub.add_parser("enqueue", help="enqueue a job, print its id")
    enq.add_argument("job")
    enq.add_argument("--queue", default=None, choices=["high", "default", "low"], help="default: the job's own")
    enq.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE")
    enq.add_argument("--delay", type=float, default=None, help="seconds before it may run")
    enq.set_defaults(fn=cmd_enqueue)

    jobs = sub.add_parser("jobs", help="inspect and retry jobs")
    jobs.add_argument("action", choices=["stats", "show", "retry"])
    jobs.add_argument("id", nargs="?")
    jobs.set_defaults(fn=cmd_jobs)

    sysd = sub.add_parser("systemd").add_subparsers(dest="action", required=True)
    si = sysd.add_parser("install", help="write the unit files for this install")
    si.add_argument("--prefix", default="/etc/systemd/system")
    si.add_argument("--sysusers-dir", default="/etc/sysusers.d")
    si.add_argument("--executable", default=None, help="path of the appliance command (default: this one)")
    si.set_defaults(fn=cmd_systemd_install)

    agent = sub.add_parser("agent", help="a business's AI agent settings").add_subparsers(dest="action", required=True)
    agent.add_parser("show", help="print them").add_argument("--business", type=int, required=True)
    aset = agent.add_parser("set", help="change them (as PATCH /api/settings)")
    aset.add_argument("--business", type=int, required=True)
    for option in AGENT_OPTIONS:
        aset.add_argument("--" + option.replace("_", "-"), dest=option, default=None,
                          type=int if option in ("silence", "max_call") else str)
    aset.add_argument("--tools", default=None, help="comma-separated: lookup_caller,save_lead,take_message,"
                      "end_call,transfer_call (empty: none)")
    for command in agent.choices.values():
        command.set_defaults(fn=cmd_agent)

    receipts = sub.add_parser("receipts", help="Gmail receipts").add_subparsers(dest="action", required=True)
    rs = receipts.add_parser("sync", help="start a sync run for a business (enqueues receipts.sync)")
    rs.add_argument("--business", type=int, required=True)
    rs.add_argument("--mode", choices=["incremental", "full"], default="incremental")
    rs.set_defaults(fn=cmd_receipts)
    receipts.add_parser("status", help="mailboxes and their latest sync runs").set_defaults(fn=cmd_receipts)

    previews = sub.add_parser("previews", help="receipt previews").add_subparsers(dest="action", required=True)
    pr = previews.add_parser("rebuild", help="forget a business's previews and thumbnails and render them again")
    pr.add_argument("--business", type=int, required=True)
    pr.set_defaults(fn=cmd_previews)

    keys = sub.add_parser("keys", help="ENCRYPTION_KEY maintenance").add_subparsers(dest="action", required=True)
    keys.add_parser("rotate", help="re-encrypt stored tokens with the first ENCRYPTION_KEY key").set_defaults(
        fn=cmd_keys)
    keys.add_parser("generate", help="print a new Fernet key").set_defaults(fn=cmd_keys)

    lt = sub.add_parser("loadtest", help="load tests")
    lt.add_argument("kind", choices=["calls", "webhooks"])
    lt.add_argument("--calls", type=int, default=10)
    lt.add_argument("--seconds", type=float, default=10)
    lt.add_argument("--url", default=None)
    lt.add_argument("--messages", type=int, default=1000)
    lt.add_argument("--duplicates", type=float, default=0.0)
    lt.add_argument("--in-flight", type=int, default=20,
                    help="webhook posts in flight, each on its own connection (1000: all at once)")
    lt.add_argument("--server-pid", default=None,
                    help="media server pid, or pids with commas (default: the port's listener)")
    lt.set_defaults(fn=cmd_loadtest)
    return parser


def enable_faulthandler() -> None:
    """SIGABRT from the supervisor's watchdog prints where a hung role was stuck."""
    try:
        faulthandler.enable(file=sys.__stderr__)  # type: ignore[arg-type]  # None is caught below
    except (AttributeError, ValueError, OSError):  # no real stderr (embedded, captured): nothing to print to
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    enable_faulthandler()
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError names the variable
        print(f"error: bad setting: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        return args.fn(args, settings) or 0
    except SettingMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
