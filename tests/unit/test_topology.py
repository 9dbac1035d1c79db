"""The bundle's table (framesift.topology) against the code that reads it: the functions'
folders and entry points, the topics, the infra's sizing, and defaults declared once."""

from __future__ import annotations

import ast
from pathlib import Path

import pulumi
import pytest

from framesift.cli.options import settings_from
from framesift.config import Settings
from framesift.topology import DEV_PUSH, FUNCTIONS, PUSH, Topics, Trigger, function
from framesift_infra.config import StackConfig
from framesift_infra.sizing import DEPLOYMENTS, MODEL_LABELER

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def test_each_function_folder_is_in_the_table_with_its_entry_point():
    assert {path.parent.name for path in FUNCTIONS_DIR.glob("*/main.py")} == {
        spec.name for spec in FUNCTIONS
    }
    for spec in FUNCTIONS:
        tree = ast.parse((FUNCTIONS_DIR / spec.name / "main.py").read_text())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert spec.entry_point in defined, spec.name


def test_every_topic_is_published_and_every_subscribed_topic_exists():
    published = {topic for spec in FUNCTIONS for topic in spec.publishes}
    subscribed = {topic for spec in FUNCTIONS for topic in spec.subscribes}
    # raw-objects is published by the bucket, export-requests and labeling-rounds by Cloud
    # Scheduler.
    scheduled = {Topics.EXPORT_REQUESTS, Topics.LABELING_ROUNDS}
    assert published | {Topics.RAW_OBJECTS} | scheduled == set(Topics.ALL)
    assert subscribed <= set(Topics.ALL)
    assert all(spec.trigger is Trigger.HTTP for spec in FUNCTIONS if not spec.subscribes)


def test_the_infra_sizes_exactly_the_functions_of_the_table():
    assert set(DEPLOYMENTS) == {spec.name for spec in FUNCTIONS}


def test_no_message_is_pushed_again_while_a_function_may_still_be_working_on_it():
    longest = max(deployment.timeout_s for deployment in (*DEPLOYMENTS.values(), MODEL_LABELER))
    assert PUSH.ack_deadline_s > longest
    assert DEV_PUSH.ack_deadline_s == PUSH.ack_deadline_s


def test_a_function_is_found_by_name_and_an_unknown_name_says_which_exist():
    assert function("labeler").entry_point == "request_labels"
    with pytest.raises(KeyError, match="sampler, dedup"):
        function("nope")


def test_a_cli_option_left_out_keeps_the_environment_value(monkeypatch):
    monkeypatch.setenv("FRAMESIFT_DEDUP_THRESHOLD", "3")
    assert settings_from(dedup_threshold=None).dedup_threshold == 3
    assert settings_from(dedup_threshold=0).dedup_threshold == 0


def test_the_stack_config_defaults_are_the_settings_and_an_explicit_zero_is_kept():
    defaults = Settings.model_construct()
    pulumi.runtime.set_all_config(
        {"gcp:project": "p", "gcp:region": "europe-west1", "framesift:dedupThreshold": "0"}
    )
    try:
        config = StackConfig.from_pulumi()
    finally:
        pulumi.runtime.set_all_config({})
    assert config.dedup_threshold == 0
    assert config.max_delivery_attempts == defaults.max_delivery_attempts
    assert config.classes == tuple(defaults.labeling_classes)
    assert config.sample_mode == defaults.sample_mode.value
