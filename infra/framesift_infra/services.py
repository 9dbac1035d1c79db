"""The Google APIs the bundle needs, enabled before anything else is made."""

from __future__ import annotations

import pulumi_gcp as gcp

from framesift_infra.config import StackConfig
from framesift_infra.stack import Stack

# The APIs the bundle calls or is deployed with (iamcredentials: signBlob for signed URLs;
# cloudresourcemanager: the project's IAM members; billingbudgets: the optional budget).
APIS = (
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
)


def enable_apis(stack: Stack, config: StackConfig) -> None:
    """Enable :data:`APIS`; every later resource waits for them (:meth:`Stack.opts`)."""
    stack.apis = [
        stack.add(
            gcp.projects.Service(
                f"api-{api.split('.', 1)[0]}",
                project=config.project,
                service=api,
                disable_on_destroy=False,  # other things in the project may use it
            )
        )
        for api in APIS
    ]
