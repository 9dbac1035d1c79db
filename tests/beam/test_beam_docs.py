"""Every ``python -m framesift.beam`` command of docs/beam.md parses: framesift's arguments, and
the rest as the options Beam's runners define (a misspelt flag would be dropped by Beam with a
warning, and the job would run without it)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from framesift.beam.__main__ import arguments

PAGE = Path(__file__).resolve().parents[2] / "docs" / "beam.md"


def _commands() -> list[list[str]]:
    """The page's commands, continuation lines joined, from the module's name on."""
    text = PAGE.read_text().replace("\\\n", " ")
    return [
        shlex.split(line.split("-m framesift.beam", 1)[1])
        for line in text.splitlines()
        if "-m framesift.beam " in line and not line.lstrip().startswith("`")
    ]


def _runner_parser() -> _BeamArgumentParser:
    parser = _BeamArgumentParser(allow_abbrev=False)
    for options in PipelineOptions.__subclasses__():
        options._add_argparse_args(parser)
    return parser


def test_the_pages_commands_are_framesifts_and_beams_options():
    commands = _commands()
    assert len(commands) >= 6  # local twice, Dataflow, Flink, Spark, portable
    runners = set()
    for command in commands:
        ours, rest = arguments().parse_known_args(command)
        assert bool(ours.paths) != (ours.prefix is not None), command
        options, unknown = _runner_parser().parse_known_args(rest)
        assert unknown == [], command
        runners.add(options.runner)
    assert runners == {
        "DirectRunner",
        "DataflowRunner",
        "FlinkRunner",
        "SparkRunner",
        "PortableRunner",
    }
