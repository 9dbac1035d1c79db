"""The edge agent (``framesift edge``): sample and deduplicate videos where they are recorded,
upload only the kept frames, their documents and the video's record, and hand them to the
cloud's dedup as the sampler function would (docs/edge.md).

- :mod:`framesift.edge.agent`: which files to take (a folder watched, paths, announcements)
  and each video's steps, resumed from the journal;
- :mod:`framesift.edge.journal`: the SQLite journal of the steps done, per video and frame;
- :mod:`framesift.edge.uploader`: the cloud side's writes, each idempotent, retried with
  backoff under the bandwidth cap (:mod:`framesift.edge.throttle`);
- :mod:`framesift.edge.announcements`: files announced on a RabbitMQ queue;
- :mod:`framesift.edge.failpoints`: where the kill tests stop the agent.

Sampling and deduplicating one video locally is :mod:`framesift.sift`, which anything else that
samples where the video is can call too.
"""
