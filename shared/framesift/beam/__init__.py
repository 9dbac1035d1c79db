"""Large batches on Apache Beam (the optional ``beam`` extra): a listing of videos sampled,
deduplicated and sent to labeling by the bundle's own stages, each run as a Beam step
(:mod:`framesift.beam.steps`), on any runner: the local one, Dataflow, Flink or Spark
(docs/beam.md). :mod:`framesift.beam.pipeline` builds the pipeline; ``python -m
framesift.beam`` runs it."""
