"""The vendors' settings as read from FRAMESIFT_* variables."""

from __future__ import annotations

import pytest

from framesift.config import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/v1"),  # every request was a 404
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000/v1"),
        ("http://127.0.0.1:9000/v1", "http://127.0.0.1:9000/v1"),
        ("http://127.0.0.1:9000/v1/", "http://127.0.0.1:9000/v1"),
        ("https://proxy.example.test/scale/v1", "https://proxy.example.test/scale/v1"),
    ],
)
def test_the_scale_api_url_names_the_api_version(monkeypatch, given, used):
    monkeypatch.setenv("FRAMESIFT_SCALE_API_URL", given)
    assert Settings().scale_api_url == used


def test_no_scale_api_url_is_scales_own():
    assert Settings().scale_api_url is None
