-- Tasks sent and frames dropped per group ($keys) of frames, at
-- FRAMESIFT_LABELING_PRICE_PER_TASK each: what labeling cost and what dedup saved; and, with
-- the frames the selection policy skipped, what dedup and selection saved together (what
-- `framesift run` reports for the videos and photos it uploaded, from labeling_cost_by_source);
-- and the documents dedup's decisions read and wrote in its indexes (Firestore operations).
SELECT $keys,
       SUM(CASE WHEN labeling_task_id IS NOT NULL THEN 1 ELSE 0 END) AS tasks_sent,
       SUM(CASE WHEN dedup_status = 'dropped' THEN 1 ELSE 0 END) AS frames_dropped,
       SUM(CASE WHEN labeling_task_id IS NOT NULL THEN 1 ELSE 0 END)
           * $price_per_task AS cost_usd,
       SUM(CASE WHEN dedup_status = 'dropped' THEN 1 ELSE 0 END)
           * $price_per_task AS saved_usd,
       SUM(CASE WHEN labeling_status = 'skipped' THEN 1 ELSE 0 END) AS frames_skipped,
       SUM(CASE WHEN dedup_status = 'dropped' OR labeling_status = 'skipped' THEN 1 ELSE 0 END)
           * $price_per_task AS saved_by_dedup_and_selection_usd,
       SUM(COALESCE(dedup_index_reads, 0)) AS dedup_index_reads,
       SUM(COALESCE(dedup_index_writes, 0)) AS dedup_index_writes
FROM {dataset}.frames AS f
WHERE NOT COALESCE(f.deleted, FALSE)
GROUP BY $keys
