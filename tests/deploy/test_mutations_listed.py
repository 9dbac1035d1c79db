"""The mutation check's list in the docs is the one it runs (tests/deploy/mutations.py)."""

from __future__ import annotations

from tests.deploy.mutations import MUTATIONS, REPO


def test_docs_list_every_mutation_the_check_runs():
    docs = (REPO / "docs" / "contributing.md").read_text()
    table = docs.split("## Mutations of the Pulumi program", 1)[1].split("\n## ", 1)[0]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == {mutation.name for mutation in MUTATIONS}
    assert len(MUTATIONS) >= 20
