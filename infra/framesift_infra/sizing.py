"""Each function's size and what its service account may touch, by function name."""

from __future__ import annotations

from dataclasses import dataclass, replace

from framesift.config import Vendor
from framesift.topology import DEDUP, EXPORTER, LABELER, SAMPLER, WEBHOOK, FunctionSpec
from framesift.vendors.registry import VENDORS
from framesift_infra.config import StackConfig


@dataclass(frozen=True)
class Deployment:
    """What the infra adds to a function of :mod:`framesift.topology` (which says its entry
    point and topics): its size, and what its service account may touch."""

    memory: str
    cpu: str
    timeout_s: int
    max_instances: int
    concurrency: int
    reads: tuple[str, ...] = ()  # bucket keys: "raw", "frames"
    writes: tuple[str, ...] = ()
    # (bucket key, prefix): writes only the objects under the prefix (a conditional binding).
    writes_under: tuple[tuple[str, str], ...] = ()
    # Reads the photos under the raw bucket's images prefix (and nothing else there): dedup
    # hashes them; the labeler hands vendors URLs signed with its own account for them.
    reads_photos: bool = False
    project_roles: tuple[str, ...] = ("roles/datastore.user",)
    signs_urls: bool = False
    warehouse: bool = False


DEPLOYMENTS = {
    # Decodes video: the most memory and the longest timeout (segments of 300 s each). 50
    # instances: a burst of uploads drains in about 10 h per 10,000 videos with no message
    # pushed more than 4 of its 7 times (benchmarks/push_burst.py, docs/bursts.md).
    SAMPLER.name: Deployment(
        memory="4Gi",
        cpu="2",
        timeout_s=540,
        max_instances=50,
        concurrency=1,
        reads=("raw",),
        writes=("frames",),
        signs_urls=True,
    ),
    DEDUP.name: Deployment(
        memory="1Gi",
        cpu="1",
        timeout_s=300,
        max_instances=20,
        concurrency=4,
        reads_photos=True,
    ),
    LABELER.name: Deployment(
        memory="512Mi",
        cpu="1",
        timeout_s=300,
        max_instances=10,
        concurrency=4,
        # Its frames, to sign their URLs and pre-label them; what its vendor writes there is
        # added by deployment_of.
        reads=("frames",),
        reads_photos=True,
        signs_urls=True,
    ),
    WEBHOOK.name: Deployment(
        memory="512Mi",
        cpu="1",
        timeout_s=60,
        max_instances=20,
        concurrency=40,
    ),
    EXPORTER.name: Deployment(
        memory="2Gi",
        cpu="1",
        timeout_s=540,
        max_instances=1,
        concurrency=1,
        project_roles=("roles/datastore.user", "roles/bigquery.jobUser"),
        warehouse=True,
    ),
}

# The labeler with a pre-labeling model (benchmarks/inference.py, docs/benchmarks.md): a
# YOLOv8n-sized model took the labeler's peak memory from 69 to 166 MiB, and a 1080p frame's
# pre-label from 61 ms on one thread to 41 ms on two. So: 2 vCPUs and one batch at a time per
# instance (inference gets both cores, as FRAMESIFT_MODEL_THREADS says), 1 GiB for a model
# several times that size.
MODEL_LABELER = replace(DEPLOYMENTS[LABELER.name], memory="1Gi", cpu="2", concurrency=1)


def deployment_of(spec: FunctionSpec, config: StackConfig) -> Deployment:
    """A function's size and access: the labeler's grows with a model, and it writes where its
    vendor writes in the frames bucket (the manifests)."""
    if spec is not LABELER:
        return DEPLOYMENTS[spec.name]
    deployment = MODEL_LABELER if config.model_uri else DEPLOYMENTS[spec.name]
    prefix = VENDORS[Vendor(config.vendor)].writes_frames_under
    return replace(deployment, writes_under=(("frames", prefix),)) if prefix else deployment
