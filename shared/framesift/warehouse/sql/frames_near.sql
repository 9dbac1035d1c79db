-- Frames (and photos) captured within $radius_km km of ($latitude, $longitude) on $day (a UTC
-- day), nearest first: a query, not a view (framesift.warehouse.views.frames_near fills it in).
-- The distance is the haversine formula on a sphere of the Earth's mean radius, 6371.0088 km
-- (within 0.5 % of the WGS 84 ellipsoid's distance), in the trigonometry BigQuery and DuckDB
-- both have: ST_DISTANCE would need BigQuery GIS or DuckDB's spatial extension. LEAST keeps
-- rounding from taking ASIN past 1 for antipodal points.
SELECT id, source, video_doc_id, collector, object_name, timestamp_ms, captured_at,
       latitude, longitude, altitude, distance_km
FROM (
    SELECT f.id, f.source, f.video_doc_id, f.collector, f.object_name, f.timestamp_ms,
           f.captured_at, f.latitude, f.longitude, f.altitude,
           2 * 6371.0088 * ASIN(LEAST(1.0, SQRT(
               POWER(SIN((f.latitude - $latitude) * $radians / 2), 2)
               + COS(f.latitude * $radians) * COS($latitude * $radians)
                 * POWER(SIN((f.longitude - $longitude) * $radians / 2), 2)
           ))) AS distance_km
    FROM {dataset}.frames AS f
    WHERE NOT COALESCE(f.deleted, FALSE)
          AND f.latitude IS NOT NULL AND f.longitude IS NOT NULL
          AND CAST(f.captured_at AS DATE) = DATE '$day'
) AS measured
WHERE distance_km <= $radius_km
ORDER BY distance_km, id
