"""Wrong programs the deploy tests must refuse: each mutation edits one module of the Pulumi
program (:mod:`framesift_infra`) and ``tests/deploy/test_infra.py`` is rerun against it; a
mutation every test passes is a missing test.

As a pytest plugin (``-p tests.deploy.mutations``) it loads the module named by
``FRAMESIFT_INFRA_MUTATION``'s mutation from its edited source before any test imports it; run
as a script (``scripts/mutate-infra``) it runs every mutation and prints the score. The archive
tests are left out of the reruns: a mutation of the program does not change what an archive
holds (their probes are cached by content anyway).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV = "FRAMESIFT_INFRA_MUTATION"
REPO = Path(__file__).resolve().parents[2]
TESTS = "tests/deploy/test_infra.py"
PYTEST = (sys.executable, "-m", "pytest", TESTS, "-x", "-q", "-p", "no:cacheprovider")
# The tests of the archives' contents, which no mutation here changes.
ARCHIVE_TESTS = (
    "archive_holds_only",
    "deployable_zip",
    "model_ships_what_loads",
    "locked_versions",
)


@dataclass(frozen=True)
class Mutation:
    name: str
    module: str  # under framesift_infra
    edits: tuple[tuple[str, str], ...]  # (text, its replacement), each text found once
    wrong: str  # what a deploy of it would get wrong


MUTATIONS = (
    Mutation(
        "no-wait-on-secret-versions",
        "functions",
        (
            ("*grants, *(secret.version for secret in reads.values())", "*grants"),
            ('"version": secret.version.version,', '"version": "latest",'),
        ),
        "a function starts before the secret version it mounts exists",
    ),
    Mutation(
        "no-wait-on-own-grants",
        "functions",
        (("*builder.grants, *grants,", "*builder.grants,"),),
        "a function starts before its account may read its secrets or touch its buckets",
    ),
    Mutation(
        "no-wait-on-build-grants",
        "functions",
        (("*builder.grants, *grants,", "*grants,"),),
        "the first builds run before the build account may write logs and images",
    ),
    Mutation(
        "no-wait-on-apis",
        "stack",
        (("depends_on=[*self.apis, *depends_on]", "depends_on=[*depends_on]"),),
        "resources of a disabled API fail on a new project",
    ),
    Mutation(
        "pubsub-agent-roles-swapped",
        "messaging",
        (
            ('"roles/iam.serviceAccountTokenCreator",\n            member=pubsub', "SWAPPED"),
            (
                '"roles/pubsub.subscriber",\n            member=pubsub',
                '"roles/iam.serviceAccountTokenCreator",\n            member=pubsub',
            ),
            ("SWAPPED", '"roles/pubsub.subscriber",\n            member=pubsub'),
        ),
        "Pub/Sub cannot mint the push tokens nor dead-letter",
    ),
    Mutation(
        "invoker-is-a-stranger",
        "functions",
        (
            (
                "else invoker.account.email.apply(",
                'else pulumi.Output.from_input("st@x.com").apply(',
            ),
        ),
        "someone else may invoke the functions; the pushes are refused",
    ),
    Mutation(
        "every-function-public",
        "functions",
        (("            if not spec.subscribes\n", "            if True\n"),),
        "anyone may invoke the Pub/Sub functions",
    ),
    Mutation(
        "ingress-widened",
        "functions",
        (('"ALLOW_INTERNAL_ONLY" if spec.subscribes', '"ALLOW_ALL" if spec.subscribes'),),
        "the Pub/Sub functions take traffic from the internet",
    ),
    Mutation(
        "audience-is-the-cloudfunctions-url",
        "messaging",
        (('"audience": service,', '"audience": function.url,'),),
        "Cloud Run refuses every push's token",
    ),
    Mutation(
        "push-to-the-cloudfunctions-url",
        "messaging",
        (('"push_endpoint": service.apply(', '"push_endpoint": function.url.apply('),),
        "pushes go where internal ingress is not documented to admit Pub/Sub",
    ),
    Mutation(
        "subscription-before-invoker-grant",
        "messaging",
        (
            (
                "opts=stack.opts(invoke, invoker.token_grant),",
                "opts=stack.opts(invoker.token_grant),",
            ),
        ),
        "the first pushes are refused, each an attempt towards the dead letter",
    ),
    Mutation(
        "subscription-before-token-grant",
        "messaging",
        (("opts=stack.opts(invoke, invoker.token_grant),", "opts=stack.opts(invoke),"),),
        "the first pushes carry no token, each an attempt towards the dead letter",
    ),
    Mutation(
        "alert-right-after-metric",
        "monitoring",
        (("opts=stack.opts(known),", "opts=stack.opts(metric),"),),
        "Cloud Monitoring refuses the alert on a metric it does not know yet",
    ),
    Mutation(
        "budget-by-project-id",
        "monitoring",
        (('f"projects/{project_number}"', 'f"projects/{config.project}"'),),
        "the Budget API refuses the update",
    ),
    Mutation(
        "no-resource-manager-api",
        "services",
        (('    "cloudresourcemanager.googleapis.com",\n', ""),),
        "project IAM members fail on a new project",
    ),
    Mutation(
        "no-billing-budgets-api",
        "services",
        (('    "billingbudgets.googleapis.com",\n', ""),),
        "the budget fails",
    ),
    Mutation(
        "build-account-is-a-builder",
        "functions",
        (
            (
                '"roles/artifactregistry.writer")',
                '"roles/artifactregistry.writer", "roles/cloudbuild.builds.builder")',
            ),
        ),
        "the build account holds far more than a build needs",
    ),
    Mutation(
        "build-cannot-read-sources",
        "functions",
        (
            (
                'sources",\n                bucket=stack.buckets["sources"]',
                'sources", bucket=stack.buckets["raw"]',
            ),
        ),
        "the builds cannot read the source archives",
    ),
    Mutation(
        "build-reads-first-gen-copy",
        "functions",
        (('f"gcf-v2-sources-{project_number}', 'f"gcf-sources-{project_number}'),),
        "the builds cannot fetch their source: Google's copy is in the 2nd gen bucket",
    ),
    Mutation(
        "build-reads-every-bucket",
        "functions",
        (('"expression": f\'resource.name.startsWith("{copies}")\'', '"expression": "true"'),),
        "the build account reads every object of the project, raw videos included",
    ),
    Mutation(
        "dedup-reads-all-raw",
        "sizing",
        (("=4,\n        reads_photos=True,", '=4,\n        reads=("raw",),'),),
        "dedup reads every video, where it hashes photos only",
    ),
    Mutation(
        "labeler-writes-all-frames",
        "sizing",
        (('writes_under=(("frames", prefix),)', 'writes=("frames",)'),),
        "the labeler may overwrite or delete any frame, where it writes manifests only",
    ),
    Mutation(
        "labeler-writes-outside-manifests",
        "iam",
        (
            (
                "condition=_objects_under(stack, key, prefix,",
                'condition=_objects_under(stack, key, "",',
            ),
        ),
        "the labeler's write grant covers the whole frames bucket",
    ),
    Mutation(
        "photo-reads-unconditioned",
        "iam",
        (
            (
                'condition=_objects_under(stack, "raw", config.images_prefix, "photos only")',
                "condition=None",
            ),
        ),
        "dedup and the labeler read the whole raw bucket",
    ),
    Mutation(
        "secret-readable-by-all",
        "iam",
        (
            (
                'secretAccessor",\n                member=member',
                'secretAccessor",\n                member="allUsers"',
            ),
        ),
        "anyone reads the vendor's secrets; the functions cannot",
    ),
    Mutation(
        "function-runs-as-invoker",
        "functions",
        (
            (
                '"service_account_email": account.email,',
                '"service_account_email": invoker.account.email,',
            ),
        ),
        "a function runs as the push account, without its own roles",
    ),
    Mutation(
        "no-dead-letter-publisher",
        "messaging",
        (
            (
                '"roles/pubsub.publisher",\n            member=pubsub',
                '"roles/pubsub.viewer",\n member=pubsub',
            ),
        ),
        "Pub/Sub cannot move a message to its dead-letter topic",
    ),
    Mutation(
        "dead-letter-at-the-functions-own-limit",
        "messaging",
        (
            (
                "pubsub_max_delivery_attempts(config.max_delivery_attempts)",
                "config.max_delivery_attempts",
            ),
        ),
        "Pub/Sub dead-letters before a function counts its last failure",
    ),
    Mutation(
        "no-retry-backoff",
        "messaging",
        (('"minimum_backoff": f"{PUSH.minimum_backoff_s}s"', '"minimum_backoff": "0s"'),),
        "failed pushes come back at once, burning the attempts",
    ),
    Mutation(
        "short-ack-deadline",
        "messaging",
        (("ack_deadline_seconds=PUSH.ack_deadline_s,", "ack_deadline_seconds=60,"),),
        "a video still being sampled is pushed again",
    ),
    Mutation(
        "no-gcs-publisher",
        "storage",
        (
            (
                '"roles/pubsub.publisher",\n            member=f"service',
                '"roles/pubsub.viewer", member=f"service',
            ),
        ),
        "uploads notify nothing",
    ),
    Mutation(
        "no-ttl-on-generations",
        "datastores",
        (
            (
                "            index_config={},\n            ttl_config={},",
                "            index_config={},",
            ),
        ),
        "a tiered dedup index keeps every past generation's documents forever",
    ),
)


def _mutated_source(mutation: Mutation) -> tuple[str, str]:
    """The module's path and its source with the mutation's edits; each edit's text must be
    there exactly once, or the mutation no longer says what it did."""
    path = REPO / "infra" / "framesift_infra" / f"{mutation.module}.py"
    source = path.read_text()
    for text, replacement in mutation.edits:
        count = source.count(text)
        if count != 1:
            raise ValueError(f"{mutation.name}: found {count} times in {path}: {text!r}")
        source = source.replace(text, replacement)
    return str(path), source


def pytest_configure(config: pytest.Config) -> None:
    """Load the mutated module in place of the program's own, before any test imports it."""
    name = os.environ.get(ENV)
    if not name:
        return
    [mutation] = [m for m in MUTATIONS if m.name == name]
    qualified = f"framesift_infra.{mutation.module}"
    assert qualified not in sys.modules, f"{qualified} was imported before the mutation"
    path, source = _mutated_source(mutation)
    module = types.ModuleType(qualified)
    module.__file__ = path  # the program finds the repository from its modules' paths
    sys.modules[qualified] = module
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 (the program's own source, edited)


def _pytest(mutation: str | None) -> subprocess.CompletedProcess[str]:
    deselect = " and ".join(f"not {test}" for test in ARCHIVE_TESTS)
    return subprocess.run(
        [*PYTEST, "-p", "tests.deploy.mutations", "-k", deselect],
        cwd=REPO,
        env={**os.environ, ENV: mutation or ""},
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> int:
    started = time.monotonic()
    for mutation in MUTATIONS:
        _mutated_source(mutation)  # every edit still applies
    baseline = _pytest(None)
    if baseline.returncode != 0:
        print(baseline.stdout[-3000:], baseline.stderr[-3000:])
        print("mutate-infra: the deploy tests fail on the program itself", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda m: _pytest(m.name), MUTATIONS))
    survived = []
    for mutation, result in zip(MUTATIONS, results, strict=True):
        failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
        if result.returncode == 1 and failed:
            print(f"killed    {mutation.name}: {failed[0].split(' ')[1].split('::')[-1]}")
        else:
            survived.append(mutation)
            print(f"SURVIVED  {mutation.name} ({mutation.wrong}): pytest exit {result.returncode}")
            print(result.stdout[-2000:], result.stderr[-2000:])
    killed = len(MUTATIONS) - len(survived)
    print(
        f"mutation score: {killed}/{len(MUTATIONS)} killed"
        f" ({100 * killed // len(MUTATIONS)} %) in {time.monotonic() - started:.0f} s"
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
