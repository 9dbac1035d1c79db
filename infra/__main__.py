"""The Pulumi program: ``pulumi preview`` / ``pulumi up`` from this folder (see the README)."""

from framesift_infra.config import StackConfig
from framesift_infra.program import deploy

deploy(StackConfig.from_pulumi())
