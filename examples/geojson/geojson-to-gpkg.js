#!/usr/bin/env node
/**
 * The GeoJSON worker's command (WORKER_COMMAND in ./Dockerfile): validates a GeoJSON file with GDAL, converts it to a
 * GeoPackage reprojected to EPSG:3857 (Web Mercator), and writes a JSON summary (feature count, geometry types,
 * extent before and after). Plain Node.js, no dependencies; GDAL's tools (Debian's gdal-bin) run without a shell.
 *
 *   node geojson-to-gpkg.js <input.geojson> <outputDir>
 *
 * Writes <outputDir>/out.gpkg and <outputDir>/out.summary.json; the worker uploads them as <name>.gpkg and
 * <name>.summary.json. On bad input it exits 1 with GDAL's own error lines on stderr (the worker's failure reason).
 * The input is opened as `GeoJSON:<path>`, so that GDAL's GeoJSON driver and no other reads it, whatever its bytes.
 */
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const TARGET_SRS = "EPSG:3857";
const LAYER = "features";

function fail(message) {
    process.stderr.write(message.trim() + "\n");
    process.exit(1);
}

/** Runs a GDAL tool (no shell); returns its stdout, or exits 1 with its ERROR lines (else its whole stderr). */
function gdal(tool, args, what) {
    const r = spawnSync(tool, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.error) fail(`${what}: cannot run ${tool}: ${r.error.message}`);
    if (r.status !== 0) {
        // GDAL's own ERROR lines are the reason (else its "Unable to open ..." line, without the driver list).
        const errors = (r.stderr || "").split("\n").filter((l) => /^ERROR/.test(l));
        const unable = (r.stdout || "").split("\n").find((l) => /^Unable to open/.test(l))?.replace(/ with the following drivers\.$/, "");
        const reason = errors.length ? errors.join("; ") : unable || (r.stderr || "").trim() || `exit ${r.status}`;
        fail(`${what} (GDAL ${tool} exited with ${r.status}): ${reason}`);
    }
    process.stderr.write(r.stderr || "");
    return r.stdout;
}

/** `Extent: (minx, miny) - (maxx, maxy)` of ogrinfo's summary, or null (no features). */
function extent(info) {
    const m = /^Extent: \(([-\d.e+]+), ([-\d.e+]+)\) - \(([-\d.e+]+), ([-\d.e+]+)\)/m.exec(info);
    return m ? { minX: Number(m[1]), minY: Number(m[2]), maxX: Number(m[3]), maxY: Number(m[4]) } : null;
}

function main() {
    const [input, outputDir] = process.argv.slice(2);
    if (!input || !outputDir) fail("usage: geojson-to-gpkg.js <input.geojson> <outputDir>");
    const size = fs.statSync(input).size;
    if (size === 0) fail("not GeoJSON: the file is empty (0 bytes)");
    const source = `GeoJSON:${input}`;

    // 1. Validate: GDAL's GeoJSON driver must open it and read every feature.
    const info = gdal("ogrinfo", ["-ro", "-so", "-al", source], "not valid GeoJSON");
    const count = /^Feature Count: (\d+)/m.exec(info);
    if (!count) fail(`not valid GeoJSON: GDAL found no feature layer in it`);

    // 2. Convert: one GeoPackage layer, reprojected.
    const gpkg = path.join(outputDir, "out.gpkg");
    gdal("ogr2ogr", ["-f", "GPKG", "-t_srs", TARGET_SRS, "-nln", LAYER, "-nlt", "GEOMETRY", gpkg, source], "conversion to GeoPackage failed");

    // 3. Summarise from the GeoPackage (its layer name is ours, so the SQL never contains anything from the input).
    const sql = `SELECT ST_GeometryType(geom) AS type, COUNT(*) AS n FROM ${LAYER} GROUP BY 1 ORDER BY 1`;
    const types = gdal("ogrinfo", ["-ro", "-q", "-sql", sql, gpkg], "summary failed");
    const geometryTypes = {};
    for (const m of types.matchAll(/type \(String\) = (.*)\n\s*n \(Integer\) = (\d+)/g)) {
        geometryTypes[m[1] === "(null)" ? "none" : m[1]] = Number(m[2]);
    }
    const converted = gdal("ogrinfo", ["-ro", "-so", gpkg, LAYER], "summary failed");
    const version = gdal("ogrinfo", ["--version"], "summary failed").trim();
    const summary = {
        featureCount: Number(count[1]),
        geometryTypes,
        extent: { crs: "EPSG:4326", ...extent(info) },
        output: { format: "GPKG", layer: LAYER, crs: TARGET_SRS, extent: extent(converted), bytes: fs.statSync(gpkg).size },
        inputBytes: size,
        gdal: version,
    };
    if (extent(info) === null) summary.extent = null;
    fs.writeFileSync(path.join(outputDir, "out.summary.json"), JSON.stringify(summary, null, 2) + "\n");
    process.stdout.write(`${summary.featureCount} feature(s) → ${TARGET_SRS} GeoPackage: ${JSON.stringify(geometryTypes)}\n`);
}

main();
