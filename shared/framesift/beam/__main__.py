"""``python -m framesift.beam``: sample, dedup and label a listing of videos on a Beam runner.

    python -m framesift.beam --prefix cam-7/2026-11/ [--labeling deployment] [Beam options]
    python -m framesift.beam --input videos/ --collector cam-7 [Beam options]

The deployment is the one the ``FRAMESIFT_*`` settings name (as for every framesift command);
every other option is the runner's (``--runner DataflowRunner --project ...``): docs/beam.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from framesift.beam.pipeline import Labeling, list_prefix, run, upload_paths
from framesift.config import Settings
from framesift.logs import configure_logging


def arguments() -> argparse.ArgumentParser:
    """framesift's own arguments; the rest are the runner's."""
    parser = argparse.ArgumentParser(prog="python -m framesift.beam", description=__doc__)
    # Options only, no positional: a runner's option and its value (``--runner X``) are left
    # to the runner whole, never its value taken for a path.
    parser.add_argument(
        "--input",
        dest="paths",
        action="append",
        type=Path,
        default=[],
        help="a local video or folder of them (repeatable), put in the raw bucket first",
    )
    parser.add_argument("--collector", help="the collector local videos are filed under")
    parser.add_argument("--prefix", help="take the raw bucket's objects under this prefix")
    parser.add_argument(
        "--labeling",
        type=Labeling,
        choices=list(Labeling),
        default=Labeling.PIPELINE,
        help="label in the pipeline, or send the kept frames to the deployment's labeler",
    )
    parser.add_argument("--json", action="store_true", help="print the counters as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments()
    known, beam_args = parser.parse_known_args(argv)
    if bool(known.paths) == (known.prefix is not None):
        parser.error("give either --input (with --collector) or --prefix")
    if known.paths and not known.collector:
        parser.error("--input needs --collector")
    configure_logging(to="stderr")
    settings = Settings()
    if known.prefix is not None:
        listing = list_prefix(settings, known.prefix)
    else:
        listing = upload_paths(settings, known.paths, known.collector)
    for path, reason in listing.refused:
        print(f"refused: {path}: {reason}", file=sys.stderr)
    totals = run(settings, listing, PipelineOptions(beam_args), known.labeling)
    if known.json:
        print(json.dumps(totals, indent=2))
    else:
        for name, value in totals.items():
            print(f"{name:<20} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
