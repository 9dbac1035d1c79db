"""The predefined roles the program grants, as Google defines them: one file per role in
``roles/``, each exactly what ``gcloud iam roles describe roles/<id> --format=json`` prints
(the IAM API's ``roles.get``; https://cloud.google.com/iam/docs/roles-permissions lists the
same). The permission check (``framesift_infra.permissions``) reads every permission a role
holds from these files, not a hand-kept subset, so a role the program binds that does more
than its stage needs shows in the least-privilege test.

Refresh them, or add the definition of a role the program starts binding, with
``scripts/iam-roles`` (``--from DIR`` takes the files from a directory instead of gcloud: a
checkout of iann0036/iam-dataset's ``gcp/roles``, a daily mirror of the same API).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

ROLES_DIR = Path(__file__).parent / "roles"


def role_file(role: str, directory: Path = ROLES_DIR) -> Path:
    """``roles/storage.objectViewer`` -> ``<directory>/storage.objectViewer.json``."""
    return directory / f"{role.removeprefix('roles/')}.json"


@cache
def role_permissions() -> Mapping[str, frozenset[str]]:
    """Every vendored role's permissions, by role name."""
    found: dict[str, frozenset[str]] = {}
    for path in sorted(ROLES_DIR.glob("*.json")):
        definition = json.loads(path.read_text())
        if role_file(definition["name"]) != path:
            raise ValueError(f"{path.name} defines {definition['name']}")
        found[definition["name"]] = frozenset(definition["includedPermissions"])
    return found


def describe(role: str, source: Path | None) -> str:
    """A role's definition as gcloud prints it: from ``source`` (a directory of such files) or
    from the IAM API through gcloud."""
    if source is not None:
        text = role_file(role, source).read_text()
    else:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise SystemExit("iam-roles: gcloud is not installed; use --from DIR")
        text = subprocess.run(
            [gcloud, "iam", "roles", "describe", role, "--format=json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    definition = json.loads(text)
    if definition.get("name") != role or "includedPermissions" not in definition:
        raise SystemExit(f"iam-roles: not the definition of {role}")
    definition["includedPermissions"] = sorted(definition["includedPermissions"])
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="iam-roles", description="Refresh the vendored definitions of the granted roles."
    )
    parser.add_argument("roles", nargs="*", help="roles/... to add (default: refresh all)")
    parser.add_argument("--from", dest="source", type=Path, help="a directory of role files")
    args = parser.parse_args(argv)
    names = args.roles or sorted(role_permissions())
    for role in names:
        role_file(role).write_text(describe(role, args.source))
        print(f"iam-roles: {role}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
