"""realm-sync [--check] [PATH ...]: apply realm files to a running Keycloak.

Exit status: 0 applied (or, with --check, nothing to apply); 1 with --check when something
differs; 2 when a file cannot be applied or the admin API refuses (nothing is half-explained:
the message names the file or the request).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx2

from realm_sync.realm import RealmFileError, load, realm_files, variables
from realm_sync.sync import Admin, RealmSync, SyncError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="realm-sync", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("/realm")],
                        help="realm files, or directories of *.json realm files (default: /realm)")
    parser.add_argument("--check", action="store_true", help="only print what would change; exit 1 if anything would")
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
    args = parser.parse_args(argv)
    try:
        values = variables(os.environ, args.secrets_dir)
        # Every file is read and checked before the first write: a bad file changes nothing.
        realms = [load(path, values) for path in realm_files(args.paths)]
        # ECS passes secrets as variables (KEYCLOAK_ADMIN_CLIENT_SECRET), compose as files.
        secret = os.environ.get("KEYCLOAK_ADMIN_CLIENT_SECRET", "")
        if not secret:
            try:
                secret = args.secret_file.read_text().strip()
            except OSError as error:
                raise SyncError(f"the admin client's secret: {error} (or set KEYCLOAK_ADMIN_CLIENT_SECRET)") from error
        with httpx2.Client(timeout=30) as http:
            admin = Admin(http, args.server, args.client_id, secret, dry_run=args.check)
            for realm in realms:
                RealmSync(admin, realm).run()
    except (RealmFileError, SyncError) as error:
        print(f"realm-sync: {error}", file=sys.stderr)
        return 2
    return 1 if args.check and admin.changes else 0


if __name__ == "__main__":
    sys.exit(main())
