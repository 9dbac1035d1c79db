-- Tasks sent and frames dropped per collector, at FRAMESIFT_LABELING_PRICE_PER_TASK each: what
-- labeling cost and what dedup saved.
SELECT collector,
       SUM(CASE WHEN labeling_task_id IS NOT NULL THEN 1 ELSE 0 END) AS tasks_sent,
       SUM(CASE WHEN dedup_status = 'dropped' THEN 1 ELSE 0 END) AS frames_dropped,
       SUM(CASE WHEN labeling_task_id IS NOT NULL THEN 1 ELSE 0 END)
           * $price_per_task AS cost_usd,
       SUM(CASE WHEN dedup_status = 'dropped' THEN 1 ELSE 0 END)
           * $price_per_task AS saved_usd
FROM {dataset}.frames AS f
WHERE NOT COALESCE(f.deleted, FALSE)
GROUP BY collector
