-- The frames where model and human disagree most: what a team should look at first.
SELECT model_version, frame_id, collector, object_name, annotation_id,
       SUM(CASE WHEN outcome = 'tp' THEN 1 ELSE 0 END) AS tp,
       SUM(CASE WHEN outcome = 'fp' THEN 1 ELSE 0 END) AS fp,
       SUM(CASE WHEN outcome = 'fn' THEN 1 ELSE 0 END) AS fn,
       SUM(CASE WHEN outcome = 'tp' THEN 0 ELSE 1 END) AS disagreements
FROM {dataset}.model_match_rows
GROUP BY model_version, frame_id, collector, object_name, annotation_id
