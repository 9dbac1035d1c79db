"""scripts/labelstudio-template keeps Label Studio's admin token and database to its user: a
stand-in label-studio creates its files as the real one does (with the process's umask)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# What `label-studio init` leaves in its data folder: the SQLite database and a media folder.
STAND_IN = """#!/bin/sh
mkdir -p "$LABEL_STUDIO_BASE_DATA_DIR/media"
echo "admin token in here" > "$LABEL_STUDIO_BASE_DATA_DIR/label_studio.sqlite3"
"""


def test_the_token_and_the_database_are_readable_by_their_user_only(tmp_path):
    label_studio = tmp_path / "label-studio"
    label_studio.write_text(STAND_IN)
    label_studio.chmod(0o755)
    template = tmp_path / "labelstudio" / "template"

    subprocess.run(
        # A umask that leaves new files world-readable, as most shells have.
        ["bash", "-c", f'umask 022; exec scripts/labelstudio-template "{template}"'],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "LABEL_STUDIO": str(label_studio)},
        check=True,
    )

    modes = {
        path.relative_to(template).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [template, *template.rglob("*")]
    }
    assert modes == {
        ".": 0o700,
        "media": 0o700,
        "label_studio.sqlite3": 0o600,
        "token": 0o600,
    }
    assert len((template / "token").read_text().strip()) == 40
