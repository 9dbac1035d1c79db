"""What the tests share: helpers, fakes, payloads and the fixtures (``fixtures``, loaded by
pytest as a plugin). No test module imports another test module or a conftest."""
