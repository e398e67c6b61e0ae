"""realm-sync [--check] [PATH ...]: apply realm files to a running Keycloak.

Exit status: 0 applied (or, with --check, nothing to apply); 1 with --check when something
differs; 2 when a file cannot be applied or the admin API refuses (nothing is half-explained:
the message names the file or the request).

realm-sync reap [--older-than S] [--every S] [--check] [PATH ...]: delete the anonymous
registrations of the files' realms that nobody ever logged in with (realm_sync/reaper.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx2

from realm_sync.realm import RealmFileError, load, realm_files, variables
from realm_sync.reaper import Reaper, Rules, Tally, forever, read_realm
from realm_sync.sync import Admin, RealmSync, SyncError

# With --every: what the compose service's healthcheck reads. The container's own /tmp.
HEARTBEAT = Path("/tmp/realm-sync-reap.alive")  # noqa: S108
REAP_DESCRIPTION = """Delete the clients anonymous dynamic client registration made that nobody ever logged in
with, once they are older than --older-than. A registration: a client whose clientId is its
internal id (a UUID) and that no realm file declares; CIMD and declared clients are never
touched. Used: a LOGIN or CODE_TO_TOKEN event for it, or a user or offline session; remembered
in the client's attribute reaper.used-at. Exit status (one round): 0 done (with --check:
nothing to do); 1 with --check when something would be reaped or remembered; 2 when a file or
the admin API fails. With --every it runs for good and logs a failed round instead."""


def connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=os.environ.get("KEYCLOAK_URL", "http://keycloak:8080"),
                        help="Keycloak's base URL, on the internal network (env KEYCLOAK_URL)")
    parser.add_argument("--client-id", default=os.environ.get("KEYCLOAK_ADMIN_CLIENT_ID", "sandbox-admin"),
                        help="the master realm's service-account admin client (env KEYCLOAK_ADMIN_CLIENT_ID)")
    parser.add_argument("--secret-file", type=Path,
                        default=Path(os.environ.get("KEYCLOAK_ADMIN_CLIENT_SECRET_FILE",
                                                    "/run/secrets/keycloak_admin_client_secret")),
                        help="the admin client's secret (env KEYCLOAK_ADMIN_CLIENT_SECRET_FILE; "
                             "or the secret itself in KEYCLOAK_ADMIN_CLIENT_SECRET)")
    parser.add_argument("--secrets-dir", type=Path, default=Path("/run/secrets"),
                        help="files here fill the realm files' placeholders by upper-cased name")


def admin_secret(args: argparse.Namespace) -> str:
    # ECS passes secrets as variables (KEYCLOAK_ADMIN_CLIENT_SECRET), compose as files.
    secret = os.environ.get("KEYCLOAK_ADMIN_CLIENT_SECRET", "")
    if not secret:
        try:
            secret = args.secret_file.read_text().strip()
        except OSError as error:
            raise SyncError(f"the admin client's secret: {error} (or set KEYCLOAK_ADMIN_CLIENT_SECRET)") from error
    return secret


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reap"]:
        return reap(argv[1:])
    parser = argparse.ArgumentParser(prog="realm-sync", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("/realm")],
                        help="realm files, or directories of *.json realm files (default: /realm)")
    parser.add_argument("--check", action="store_true", help="only print what would change; exit 1 if anything would")
    connection_options(parser)
    args = parser.parse_args(argv)
    try:
        values = variables(os.environ, args.secrets_dir)
        # Every file is read and checked before the first write: a bad file changes nothing.
        realms = [load(path, values) for path in realm_files(args.paths)]
        secret = admin_secret(args)
        with httpx2.Client(timeout=30) as http:
            admin = Admin(http, args.server, args.client_id, secret, dry_run=args.check)
            for realm in realms:
                RealmSync(admin, realm).run()
    except (RealmFileError, SyncError) as error:
        print(f"realm-sync: {error}", file=sys.stderr)
        return 2
    return 1 if args.check and admin.changes else 0


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number, at least `minimum`."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"at least {minimum}")
        return value
    return parse


def reap(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="realm-sync reap", description=REAP_DESCRIPTION)
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("/realm")],
                        help="realm files, or directories of them: the realms to reap in, and the clients they "
                             "declare, never reaped (default: /realm)")
    parser.add_argument("--older-than", type=at_least(0), default=3600, metavar="S",
                        help="reap only registrations at least S seconds old (default 3600)")
    parser.add_argument("--every", type=at_least(1), metavar="S",
                        help="run a round every S seconds, for good (a long-running service); default: one round")
    parser.add_argument("--check", action="store_true",
                        help="only print what would be reaped or remembered; write nothing")
    parser.add_argument("--max-deletions", type=at_least(1), default=500, metavar="N",
                        help="delete at most N clients a round; the rest waits for the next (default 500)")
    parser.add_argument("--only", action="append", default=[], metavar="CLIENT_ID",
                        help="look only at this clientId (repeatable); the rule still decides")
    parser.add_argument("--heartbeat", type=Path, default=HEARTBEAT,
                        help="with --every: the file a healthcheck reads (the time until which the reaper "
                             "counts as healthy)")
    connection_options(parser)
    args = parser.parse_args(argv)
    rules = Rules(older_than=args.older_than, max_deletions=args.max_deletions, check=args.check)
    summaries: dict[str, str] | None = {} if args.every else None

    def one_round() -> list[Tally]:
        values = variables(os.environ, args.secrets_dir)
        realms = [read_realm(path, values) for path in realm_files(args.paths)]
        secret = admin_secret(args)
        # A new admin session every round: a Keycloak restarted since the last one is no matter.
        with httpx2.Client(timeout=30) as http:
            admin = Admin(http, args.server, args.client_id, secret, dry_run=args.check)
            return [Reaper(admin, realm, rules, only=args.only, summaries=summaries).run() for realm in realms]

    if args.every:
        signal.signal(signal.SIGTERM, _stop)  # PID 1 in a container: no default action for SIGTERM
        print(f"realm-sync reap: every {args.every} s, registrations unused {args.older_than} s after they were made "
              f"are {'listed (--check)' if args.check else 'deleted'}, at most {args.max_deletions} a round", flush=True)
        forever(one_round, args.every, heartbeat=args.heartbeat)
    try:
        tallies = one_round()
    except (RealmFileError, SyncError) as error:
        print(f"realm-sync reap: {error}", file=sys.stderr)
        return 2
    return 1 if args.check and any(tally.writes for tally in tallies) else 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
