"""The docs that are generated from the code are up to date."""

from framesift_dev import configdoc


def test_the_configuration_page_is_generated_from_the_settings():
    assert configdoc.PAGE.read_text() == configdoc.render(), "run scripts/docs"
