"""Running ``framesift edge`` as a process against the emulated stack, and reading back what
it left in the cloud, for the edge's emulated tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.cloud import firestore

from framesift.edge.failpoints import FAILPOINT_ENV
from framesift_dev.devstack import StackState

FRAMESIFT = str(Path(sys.executable).parent / "framesift")


def edge_command(
    state_dir: Path, paths: list[Path], collector: str, edge_id: str = "edge-a"
) -> list[str]:
    return [
        FRAMESIFT,
        "edge",
        "run",
        *(str(path) for path in paths),
        "--state-dir",
        str(state_dir),
        "--collector",
        collector,
        "--edge-id",
        edge_id,
        "--stable-seconds",
        "0",
        "--poll-seconds",
        "0.5",
    ]


def edge_env(
    stack: StackState, failpoint: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The functions' settings (the same policies) and the emulators, with a failpoint."""
    env = {**os.environ, **stack.env, **(extra or {})}
    env.pop(FAILPOINT_ENV, None)
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    return env


def run_edge(
    stack: StackState,
    state_dir: Path,
    paths: list[Path],
    collector: str,
    failpoint: str | None = None,
    extra: Mapping[str, str] | None = None,
    edge_id: str = "edge-a",
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        edge_command(state_dir, paths, collector, edge_id),
        env=edge_env(stack, failpoint, extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def cloud_frames(db: firestore.Client, collector: str) -> list[dict[str, Any]]:
    query = db.collection("frames").where(
        filter=firestore.FieldFilter("collector", "==", collector)
    )
    return [doc.to_dict() for doc in query.stream()]


def cloud_videos(db: firestore.Client, collector: str) -> list[dict[str, Any]]:
    query = db.collection("videos").where(
        filter=firestore.FieldFilter("collector", "==", collector)
    )
    return [doc.to_dict() for doc in query.stream()]


def labeled(db: firestore.Client, collector: str, count: int) -> list[dict[str, Any]] | None:
    """``collector``'s frames once ``count`` are there, each decided and each kept one's task
    requested (None until then)."""
    frames = cloud_frames(db, collector)
    if len(frames) < count or any(not f.get("dedup_status") for f in frames):
        return None
    kept = [f for f in frames if f["dedup_status"] == "kept"]
    if any(f.get("labeling_status") != "requested" for f in kept):
        return None
    return frames
