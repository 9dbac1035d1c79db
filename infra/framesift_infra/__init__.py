"""framesift's infrastructure as a Pulumi program (Python, pulumi-gcp)."""
