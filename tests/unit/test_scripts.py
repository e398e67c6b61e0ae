"""No secret on a command line. Any process on the machine (or in the container) reads every
command line: `ps`, /proc/<pid>/cmdline, and shell history keeps them too. A process's
environment is readable only by its user, and a file by whom its mode says: secrets reach
commands through those (a secret file, stdin, KC_CLI_CLIENT_SECRET for kcadm, \\getenv for psql).

The scripts, Makefile and Dockerfiles are scanned for the shapes a secret on a command line takes
— `--secret "$x"`, `--password=$(cat f)`, `psql -v pw=…`, `client_secret=$x` in a request,
`docker exec -e PASSWORD=$x`, `curl -u user:$x` — and the Python that builds argument vectors for
the same tools (tests driving kcadm in a container) for `"--secret", value`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.stack import ROOT

SECRET_WORDS = r"(?:secret|password|passwd|passphrase|token|trustpass|storepass|keypass|pw|pass)"
SECRET_NAME = rf"[A-Za-z0-9_]*{SECRET_WORDS}[A-Za-z0-9_]*"
EXPANSION = r"""["']?\$"""  # a value that is a variable or a command substitution: the secret itself

RULES: list[tuple[str, re.Pattern[str]]] = [
    # kcadm --secret/--password, curl --password, any --token=… : the value is on the command line.
    ("a secret-bearing option with its value",
     re.compile(rf"(?<![\w-])--(?:client-)?{SECRET_WORDS}(?:[ \t]+|=){EXPANSION}", re.IGNORECASE)),
    # psql -v pw=…, --set, --variable: the variable's value is an argument.
    ("a psql variable holding a secret",
     re.compile(rf"(?<![\w-])(?:-v|--set|--variable)[ \t]*=?[ \t]*{SECRET_NAME}=", re.IGNORECASE)),
    # docker (compose) exec/run -e NAME=value: the value is on the host's command line.
    ("an environment value passed as an argument",
     re.compile(rf"(?<![\w-])(?:-e|--env)[ \t]+[\"']?{SECRET_NAME}=", re.IGNORECASE)),
    # A form field or query parameter built into a command's arguments (curl -d, wget --post-data);
    # not a shell assignment of that name (below).
    ("a credential in a request built on the command line",
     re.compile(rf"""(?:^|[\s"'&?])(?P<field>client_secret|client_assertion|password|refresh_token|access_token)={EXPANSION}""")),
    # curl -u user:$secret, --user …
    ("basic-auth credentials as an argument",
     re.compile(rf"""(?<![\w-])(?:-u|--user)[ \t]+["']?[^\s"':]*:{EXPANSION}""")),
]
# Build arguments and image environment are kept in the image's history and config.
DOCKERFILE_RULE = ("a secret baked into the image (ARG/ENV)", re.compile(rf"^(?:ARG|ENV)\s+{SECRET_NAME}\b", re.IGNORECASE))
# Python building an argument vector: "--secret", value
PYTHON_RULE = ("a secret-bearing option in an argument vector",
               re.compile(rf"""["']--(?:client-)?{SECRET_WORDS}["']\s*,""", re.IGNORECASE))


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, comments dropped; each with its first line number."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
            if line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


# What may precede a word at the position of a command: assignments (`a=1 b="$x" cmd`) and the
# declaration builtins. A `name=value` there is a shell variable, not an argument.
COMMAND_POSITION = re.compile(
    r"^(?:.*(?:;|&&|\|\||\||\(|\{|\b(?:then|do|else)(?=\s))\s*)?"  # the start of a command
    r"\s*(?:(?:export|local|readonly|declare)\s+)?"
    r"""(?:\w+=(?:"[^"]*"|'[^']*'|[^\s"'])*\s+)*$""")  # assignments before it


def matches(pattern: re.Pattern[str], line: str) -> bool:
    for match in pattern.finditer(line):
        field = match.groupdict().get("field")
        if field is not None and COMMAND_POSITION.match(line[:match.start("field")]):
            continue  # `password="$(tr -d '\n' < file)"`: an assignment, not an argument
        return True
    return False


def findings_in(text: str, kind: str) -> list[tuple[int, str]]:
    """(line, rule) for every secret on a command line in `text`, a file of `kind`
    ("shell", "dockerfile" or "python")."""
    found = []
    if kind == "python":
        for number, line in enumerate(text.splitlines(), 1):
            if PYTHON_RULE[1].search(line):
                found.append((number, PYTHON_RULE[0]))
        return found
    for number, line in logical_lines(text):
        rules = [*RULES, DOCKERFILE_RULE] if kind == "dockerfile" else RULES
        found.extend((number, name) for name, pattern in rules if matches(pattern, line))
    return found


def scanned_files() -> list[tuple[Path, str]]:
    shell = [*ROOT.glob("compose/scripts/*.sh"), *ROOT.glob("services/*/*.sh"), *ROOT.glob("services/*/*/*.sh"),
             ROOT / "Makefile", ROOT / ".ci" / "run"]
    dockerfiles = [*ROOT.glob("services/*/Dockerfile"), ROOT / "cimd-host" / "Dockerfile"]
    python = [p for top in ("tests", "services", "deploy", "cimd-host") for p in (ROOT / top).rglob("*.py")
              if ".venv" not in p.parts and "node_modules" not in p.parts and p != Path(__file__)]
    files = [*((p, "shell") for p in shell), *((p, "dockerfile") for p in dockerfiles), *((p, "python") for p in python)]
    return [(p, kind) for p, kind in files if p.is_file()]


def test_no_secret_is_passed_on_a_command_line():
    files = scanned_files()
    assert len([p for p, kind in files if kind == "shell"]) >= 15
    assert {p.name for p, _ in files} >= {"forget-keys.sh", "configure-master.sh", "entrypoint.sh", "Dockerfile"}
    findings = [f"{path.relative_to(ROOT)}:{line}: {rule}"
                for path, kind in files for line, rule in findings_in(path.read_text(), kind)]
    assert findings == [], "secrets on command lines:\n" + "\n".join(findings)


# The rules themselves: what they must catch, and what they must leave alone.
CAUGHT = {
    "kcadm --secret": ('kcadm.sh get realms --client sandbox-admin --secret "$secret"', "shell"),
    "kcadm --secret continued": ('kcadm.sh create x --no-config \\\n  --client c --secret "$s" >/dev/null', "shell"),
    "--password=$(…)": ("tool --password=$(cat /run/secrets/pw)", "shell"),
    "--token unquoted": ("kcadm.sh get users --token $TOKEN", "shell"),
    "psql -v pw=": ('psql -v ON_ERROR_STOP=1 -q -d postgres -v pw="$password" <<SQL', "shell"),
    "psql --set": ('psql --set=db_password="$p"', "shell"),
    "curl form": ('curl -d "grant_type=client_credentials&client_secret=$secret" "$url"', "shell"),
    "curl form field alone": ('curl --data-urlencode password="$pw" "$url"', "shell"),
    "form after an assignment": ('x=1 curl -d client_secret="$s" "$url"', "shell"),
    "curl -u": ('curl -u "admin:$ADMIN_PASSWORD" https://x', "shell"),
    "docker exec -e": ('docker compose exec -e KC_CLI_CLIENT_SECRET="$secret" keycloak kcadm.sh', "shell"),
    "Dockerfile RUN": ('RUN tool --secret "$BUILD_SECRET"', "dockerfile"),
    "Dockerfile ARG": ("ARG ADMIN_PASSWORD", "dockerfile"),
    "python argv": ('["kcadm.sh", *args, "--secret", stack.secret("x")]', "python"),
}
LEFT_ALONE = {
    "an assignment from a file": ('secret="$(tr -d \'\\n\' < /run/secrets/keycloak_admin_client_secret)"', "shell"),
    "an environment prefix": ('KC_CLI_CLIENT_SECRET="$(cat "$file")" kcadm.sh config credentials --client c', "shell"),
    "an export": ('export KC_BOOTSTRAP_ADMIN_PASSWORD="$pw"', "shell"),
    "an indented assignment": ('  password="$(tr -d \'\\n\' < "$secret")"', "shell"),
    "an assignment after a keyword": ('if true; then password="$(cat f)"; fi', "shell"),
    "a secret file option": ('realm-sync --secret-file "$path" --secrets-dir /run/secrets', "shell"),
    "a path to a secret": ('MCP_TEST_PASSWORD_FILE="${STATE}/secrets/demo-user-password" pytest', "shell"),
    "psql options": ("psql -v ON_ERROR_STOP=1 -q -d postgres", "shell"),
    "a comment": ('# never: kcadm.sh --secret "$secret"', "shell"),
    "a build secret mount": ("RUN --mount=type=secret,id=build_ca,required=false true", "dockerfile"),
    "an option without a value": ("kcadm.sh config credentials --client sandbox-admin  # prompts --secret", "shell"),
    "a python secret-file option": ('parser.add_argument("--secret-file", type=Path)', "python"),
    "an environment name only": ("docker compose exec -e KC_CLI_CLIENT_SECRET keycloak true", "shell"),
}


@pytest.mark.parametrize("case", list(CAUGHT))
def test_the_scan_catches(case: str):
    text, kind = CAUGHT[case]
    assert findings_in(text, kind), case


@pytest.mark.parametrize("case", list(LEFT_ALONE))
def test_the_scan_leaves_alone(case: str):
    text, kind = LEFT_ALONE[case]
    assert findings_in(text, kind) == [], case
