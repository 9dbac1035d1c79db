"""framesift: videos in a GCS bucket in, a labeled, queryable vision dataset out."""

__version__ = "0.1.0"
