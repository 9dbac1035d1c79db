-- Precision, recall and AP at IoU 0.5 of the model's boxes per group ($keys) of
-- model_match_rows. AP is Pascal VOC's all-point interpolated one: the boxes by score, highest
-- first; at each true positive the best precision at its rank or below; their sum over the
-- human boxes. Only pre-label boxes (scored at least FRAMESIFT_MODEL_CONFIDENCE) are ranked, so
-- it is the curve's part above that confidence.
WITH ranked AS (
    SELECT $keys, id, score, outcome,
           SUM(CASE WHEN outcome = 'tp' THEN 1 ELSE 0 END) OVER (
               $partition ORDER BY score DESC, id ROWS UNBOUNDED PRECEDING
           ) / COUNT(*) OVER (
               $partition ORDER BY score DESC, id ROWS UNBOUNDED PRECEDING
           ) AS precision_here
    FROM {dataset}.model_match_rows
    WHERE outcome IN ('tp', 'fp')
), interpolated AS (
    SELECT $keys, outcome,
           MAX(precision_here) OVER (
               $partition ORDER BY score ASC, id DESC ROWS UNBOUNDED PRECEDING
           ) AS best_precision
    FROM ranked
), summed AS (
    SELECT $keys, SUM(CASE WHEN outcome = 'tp' THEN best_precision ELSE 0 END) AS area
    FROM interpolated
    GROUP BY $keys
), counted AS (
    SELECT $keys,
           SUM(CASE WHEN outcome = 'tp' THEN 1 ELSE 0 END) AS tp,
           SUM(CASE WHEN outcome = 'fp' THEN 1 ELSE 0 END) AS fp,
           SUM(CASE WHEN outcome = 'fn' THEN 1 ELSE 0 END) AS fn
    FROM {dataset}.model_match_rows
    GROUP BY $keys
)
SELECT $counted_keys, c.tp, c.fp, c.fn,
       CASE WHEN c.tp + c.fp > 0 THEN c.tp / (c.tp + c.fp) END AS precision,
       CASE WHEN c.tp + c.fn > 0 THEN c.tp / (c.tp + c.fn) END AS recall,
       CASE WHEN c.tp + c.fn > 0 THEN COALESCE(a.area, 0) / (c.tp + c.fn) END AS ap50
FROM counted AS c
LEFT JOIN summed AS a ON $joined
