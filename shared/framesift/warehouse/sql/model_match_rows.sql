-- The model against the humans: each match of a frame's current label with its pre-label
-- (framesift.agreement), with the frame's collector and day.
SELECT m.id, m.model_version, m.label, m.outcome, m.score, m.iou, m.frame_id,
       m.annotation_id, f.collector, f.object_name, CAST(f.created_at AS DATE) AS day
FROM {dataset}.model_matches AS m
JOIN {dataset}.frame_labels AS l ON l.annotation_id = m.annotation_id
JOIN {dataset}.frames AS f ON f.id = m.frame_id
WHERE NOT COALESCE(m.deleted, FALSE) AND NOT COALESCE(f.deleted, FALSE)
