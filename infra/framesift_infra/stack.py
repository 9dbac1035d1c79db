"""The record every module of the Pulumi program (:mod:`framesift_infra.program`) adds its
resources to, and the options each resource is declared with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import pulumi
import pulumi_gcp as gcp

R = TypeVar("R", bound=pulumi.Resource)


@dataclass
class Stack:
    """What the program made, for its outputs and its tests."""

    buckets: dict[str, gcp.storage.Bucket] = field(default_factory=dict)
    topics: dict[str, gcp.pubsub.Topic] = field(default_factory=dict)
    accounts: dict[str, gcp.serviceaccount.Account] = field(default_factory=dict)
    functions: dict[str, gcp.cloudfunctionsv2.Function] = field(default_factory=dict)
    resources: list[pulumi.Resource] = field(default_factory=list)
    apis: list[gcp.projects.Service] = field(default_factory=list)
    # Per function: the secrets it mounts.
    mounted: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def add(self, resource: R) -> R:
        self.resources.append(resource)
        return resource

    def opts(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of every resource: created once the APIs are enabled (on a new project a
        resource of a disabled API fails), after ``depends_on``."""
        return pulumi.ResourceOptions(depends_on=[*self.apis, *depends_on])


def service_uri(function: gcp.cloudfunctionsv2.Function) -> pulumi.Output[str]:
    """The function's Cloud Run address (run.app): the one address whose path the function sees
    as it is sent, and an audience Cloud Run always accepts
    (https://cloud.google.com/run/docs/configuring/custom-audiences). Pushes and the vendors'
    callbacks use it; ``url`` is the cloudfunctions.net alias."""
    return function.service_config.apply(lambda served: (served.uri or "") if served else "")
