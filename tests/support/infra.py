"""The Pulumi program under Pulumi's unit-test mocks (no CLI, no cloud): every resource it
declares is recorded with its inputs; and the grants those resources give each account."""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from framesift_infra.permissions import Grant, Scope
from framesift_infra.secrets import secrets_of

PROJECT = "demo-project"
PROJECT_NUMBER = "123456"
GCS_AGENT = f"service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
PUBSUB_AGENT = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"


# A registration: its type and name.
Key = tuple[str, str]


def _key(urn: str) -> Key:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> (type, name)."""
    typ, name = urn.split("::")[-2:]
    return typ.rsplit("$", 1)[-1], name


def run_url(service: str) -> str:
    """A Cloud Run service's address (``<name>-<hash>-<region code>.a.run.app``)."""
    return f"https://{service}-x4kfpbnzeq-ew.a.run.app"


def accepted_audiences(function: dict[str, Any]) -> set[str]:
    """The audiences Cloud Run accepts in an ID token to a 2nd gen function's service: its
    run.app URL, always, and the custom audiences it is given (the program gives none):
    https://cloud.google.com/run/docs/configuring/custom-audiences ("must provide a valid ID
    token that includes an audience claim matching the receiving service's *.run.app URL";
    "The default Google-generated URL is always an accepted audience value")."""
    return {function["serviceConfig"]["uri"]}


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[tuple[str, str, dict[str, Any]]] = []
        # What each registration depends on, as Pulumi registers it: its depends_on and the
        # resources whose outputs its inputs take (so the order a real `pulumi up` follows).
        self.depends: dict[Key, set[Key]] = {}

    def after(self, typ: str, name: str) -> set[Key]:
        """Every registration ``name`` of ``typ`` is created after: its dependencies, theirs..."""
        found: set[Key] = set()
        todo = list(self.depends[(typ, name)])
        while todo:
            key = todo.pop()
            if key not in found:
                found.add(key)
                todo.extend(self.depends.get(key, ()))
        return found

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        outputs = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = f"{args.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
            outputs["name"] = f"projects/{PROJECT}/serviceAccounts/{outputs['email']}"
        elif args.typ == "gcp:pubsub/topic:Topic":
            resource_id = f"projects/{PROJECT}/topics/{args.inputs['name']}"
        elif args.typ == "gcp:secretmanager/secretVersion:SecretVersion":
            outputs["version"] = "1"
        elif args.typ == "gcp:cloudfunctionsv2/function:Function":
            # What the Cloud Functions v2 API answers for a 2nd gen function: its url is the
            # cloudfunctions.net address, its serviceConfig.uri its Cloud Run service's run.app
            # address (firebase/firebase-tools#9922 reads both from the same Function).
            name, region = args.inputs["name"], args.inputs["location"]
            outputs["url"] = f"https://{region}-{PROJECT}.cloudfunctions.net/{name}"
            outputs["serviceConfig"] = {**args.inputs["serviceConfig"], "uri": run_url(name)}
        self.resources.append((args.typ, args.name, outputs))
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": PROJECT_NUMBER, "projectId": PROJECT}
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            return {"emailAddress": GCS_AGENT}
        return {}


# Made-up secret values for the program under mocks (never a real deployment's).
SECRET_VALUES = {
    "labelstudio-api-key": "ls-api-key-for-tests",
    "labelstudio-webhook-secret": "ls-webhook-secret-for-tests",
    "scale-api-key": "scale-api-key-for-tests",
    "scale-callback-auth-key": "scale-callback-key-for-tests",
}


def vendor_secret_values(vendor: str) -> dict[str, str]:
    """The test values of the secrets ``vendor``'s deployment is configured with."""
    return {s: SECRET_VALUES[s] for s in secrets_of(vendor) if s in SECRET_VALUES}


class _RegistrationMonitor(MockMonitor):
    """Pulumi's mock monitor, recording each registration's dependencies."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self.recorder = recorder

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.recorder.depends[_key(response.urn)] = set(map(_key, request.dependencies))
        return response


def deploy_under_mocks(**config: Any) -> tuple[Recorder, Any]:
    """Run the program with ``config`` (StackConfig fields) under the mocks."""
    recorder = Recorder()
    pulumi.runtime.set_mocks(
        recorder,
        project="framesift",
        stack="test",
        preview=False,
        monitor=_RegistrationMonitor(recorder),
    )
    from framesift_infra.config import StackConfig
    from framesift_infra.program import deploy

    made: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        stack = deploy(StackConfig(project=PROJECT, region="europe-west1", **config))
        made["stack"] = stack
        return pulumi.Output.all(*[resource.urn for resource in stack.resources])

    run()
    return recorder, made["stack"]


def of_type(recorder: Recorder, typ: str) -> dict[str, dict[str, Any]]:
    return {name: inputs for t, name, inputs in recorder.resources if t == typ}


# Each kind of IAM binding the program declares: the scope it grants on, and its input naming
# the resource.
_BINDINGS = (
    ("gcp:projects/iAMMember:IAMMember", Scope.PROJECT, None),
    ("gcp:storage/bucketIAMMember:BucketIAMMember", Scope.BUCKET, "bucket"),
    ("gcp:pubsub/topicIAMMember:TopicIAMMember", Scope.TOPIC, "topic"),
    ("gcp:bigquery/datasetIamMember:DatasetIamMember", Scope.DATASET, "datasetId"),
    ("gcp:serviceaccount/iAMMember:IAMMember", Scope.SELF, None),
)
_PREFIX_CONDITION = re.compile(
    r'resource\.name\.startsWith\("projects/_/buckets/[^/]+/objects/(.*)"\)'
)


def grants(recorder: Recorder, member: str) -> list[Grant]:
    """The roles bound to ``member`` (``serviceAccount:...``), each on what it grants."""
    found = []
    for typ, scope, field in _BINDINGS:
        for binding in of_type(recorder, typ).values():
            if binding["member"] != member:
                continue
            if scope is Scope.SELF and not binding["serviceAccountId"].endswith(
                member.removeprefix("serviceAccount:")
            ):
                continue  # a role on another account
            condition = (binding.get("condition") or {}).get("expression", "")
            prefix = _PREFIX_CONDITION.fullmatch(condition) if condition else None
            if condition and prefix is None:
                raise ValueError(f"a condition the check cannot read: {condition}")
            found.append(
                Grant(
                    binding["role"],
                    scope,
                    str(binding[field]) if field else "",
                    prefix[1] if prefix else "",
                )
            )
    return found
