"""The Pulumi program: ``pulumi preview`` / ``pulumi up`` from this folder (see the README)."""

from framesift_infra.config import StackConfig
from framesift_infra.stack import deploy

deploy(StackConfig.from_pulumi())
