-- Boxes and frames per label and collector.
SELECT b.label, f.collector, COUNT(*) AS boxes, COUNT(DISTINCT f.id) AS frames
FROM {dataset}.frames AS f
JOIN {dataset}.frame_labels AS l ON l.frame_id = f.id
JOIN {dataset}.annotation_boxes AS b ON b.annotation_id = l.annotation_id
WHERE NOT COALESCE(f.deleted, FALSE) AND NOT COALESCE(b.deleted, FALSE)
GROUP BY b.label, f.collector
