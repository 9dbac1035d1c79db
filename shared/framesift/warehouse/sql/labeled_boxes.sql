-- The label's boxes with their frame.
SELECT f.id AS frame_id, f.collector, f.video_id, f.timestamp_ms, f.bucket,
       f.object_name, f.width, f.height, b.vendor, b.label, b.left_px, b.top_px,
       b.width_px, b.height_px, b.x, b.y, b.w, b.h, b.rotation, b.annotation_id
FROM {dataset}.frames AS f
JOIN {dataset}.frame_labels AS l ON l.frame_id = f.id
JOIN {dataset}.annotation_boxes AS b ON b.annotation_id = l.annotation_id
WHERE NOT COALESCE(f.deleted, FALSE) AND NOT COALESCE(b.deleted, FALSE)
