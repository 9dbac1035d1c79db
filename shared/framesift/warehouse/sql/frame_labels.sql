-- Each frame's label: its newest live annotation (submitted, or empty: a negative); the other
-- annotators' stay in annotations and annotation_boxes for agreement figures.
SELECT frame_id, id AS annotation_id, vendor, status, annotator, vendor_updated_at,
       image_width, image_height, unsupported
FROM (
    SELECT a.frame_id, a.id, a.vendor, a.status, a.annotator, a.vendor_updated_at,
           a.image_width, a.image_height, a.unsupported,
           ROW_NUMBER() OVER (
               PARTITION BY a.frame_id ORDER BY a.vendor_updated_at DESC, a.id DESC
           ) AS newest
    FROM {dataset}.annotations AS a
    WHERE NOT COALESCE(a.deleted, FALSE) AND a.status IN ($live_statuses)
          AND a.frame_id IS NOT NULL
) AS ranked
WHERE newest = 1
