-- mAP@0.5 per model version: the mean of the classes' AP (a class no human drew has none, as
-- in COCO).
SELECT model_version, AVG(ap50) AS map50, SUM(tp) AS tp, SUM(fp) AS fp,
       SUM(fn) AS fn, COUNT(ap50) AS classes
FROM {dataset}.model_quality
GROUP BY model_version
