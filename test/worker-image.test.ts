/**
 * The same good job through the built container image (lambda-ecs-worker/povray:dev, `bash scripts/build-image.sh`),
 * run as in production: read-only root file system, tmpfs /scratch and /tmp, uid 1000, tini as PID 1.
 * Without the image this test is pending, unless CI or REQUIRE_ALL_TESTS=1 is set: then it fails.
 */
import { expect } from "chai";
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Moto, startMoto } from "../harness/moto";
import { Aws, LogLine, makeZip, pngSize, scene, tinyJobZip } from "../harness/worker-env";
import { GEOJSON_IMAGE, RUNTIME_IMAGE, WORKER_IMAGE, imageBuilt, imageNodeVersion, podman, runFlags, runImage } from "./helpers/worker-image";
import { requirePrerequisite } from "./helpers/prerequisite";

function collect(proc: ChildProcess) {
    const logs: LogLine[] = [];
    let out = "";
    let err = "";
    const listeners: Array<() => void> = [];
    proc.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        let nl: number;
        while ((nl = out.indexOf("\n")) >= 0) {
            const line = out.slice(0, nl);
            out = out.slice(nl + 1);
            try {
                logs.push(JSON.parse(line));
            } catch {
                logs.push({ event: "non-json", line });
            }
            listeners.forEach((l) => l());
        }
    });
    proc.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
    const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
    const waitFor = (event: string) =>
        new Promise<void>((resolve, reject) => {
            const check = () => {
                if (logs.some((l) => l.event === event)) resolve();
            };
            listeners.push(check);
            check();
            void exited.then(() => (logs.some((l) => l.event === event) ? resolve() : reject(new Error(`exited before ${event}: ${err}`))));
        });
    return { logs, exited, waitFor, stderr: () => err };
}

describe(`worker container image ${WORKER_IMAGE} (pending when the image is not built, unless CI or REQUIRE_ALL_TESTS=1)`, function () {
    let moto: Moto;
    let aws: Aws;

    before(async function () {
        requirePrerequisite(this, imageBuilt(), `the image ${WORKER_IMAGE} (bash scripts/build-image.sh)`);
        moto = await startMoto();
        aws = new Aws(moto);
    });
    after(async function () {
        await moto?.stop();
    });

    function containerEnv(queueUrl: string, dlqUrl: string): Record<string, string> {
        return { ...moto.env, QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, WORKER_WAIT_SECONDS: "1" };
    }

    it("runs Node.js 22, the major of the launcher's nodejs22.x runtime and of the node:22-bookworm-slim base", function () {
        expect(imageNodeVersion()).to.match(/^22\.\d+\.\d+$/);
    });

    it("renders a good job with a read-only root, tmpfs /scratch and /tmp, as uid 1000, and exits 0 when drained", async function () {
        const bucket = await aws.bucket("image-test");
        const { queueUrl, dlqUrl } = await aws.queues("image-test");
        await aws.put(bucket, "in/good one.zip", await tinyJobZip("good one"));
        await aws.send(queueUrl, JSON.parse(JSON.stringify({ bucket, key: "in/good one.zip" })));
        const c = collect(runImage(`worker-image-test-${process.pid}-1`, { ...containerEnv(queueUrl, dlqUrl), WORKER_IDLE_EXIT: "1" }));
        const code = await c.exited;
        expect(code, c.stderr()).to.equal(0);
        const png = await aws.get(bucket, "in/good one.png");
        expect(png, `PNG; logs: ${JSON.stringify(c.logs)}`).to.not.equal(undefined);
        expect(pngSize(png!)).to.deep.equal({ width: 32, height: 24 });
        expect((await aws.head(bucket, "in/good one.png")).ContentType).to.equal("image/png");
        expect(c.logs.map((l) => l.event)).to.include.members(["received", "rendered", "uploaded", "deleted", "exiting"]);
        expect(await aws.depth(queueUrl)).to.equal(0);
        expect(await aws.depth(dlqUrl)).to.equal(0);
    });

    it("forwards SIGTERM through tini: the render is killed, the message re-sent (an interruption), exit 0", async function () {
        const bucket = await aws.bucket("image-test-term");
        const { queueUrl, dlqUrl } = await aws.queues("image-test-term", 3, 60);
        await aws.put(bucket, "slow.zip", await makeZip([{ name: "slow.pov", data: scene("slow.pov") }]));
        await aws.send(queueUrl, { bucket, key: "slow.zip" });
        const name = `worker-image-test-${process.pid}-2`;
        const c = collect(runImage(name, { ...containerEnv(queueUrl, dlqUrl), WORKER_IDLE_EXIT: "0" }));
        await c.waitFor("scene");
        const k = podman(["kill", "--signal", "TERM", name]);
        expect(k.status, k.stderr).to.equal(0);
        const code = await c.exited;
        expect(code, c.stderr()).to.equal(0);
        const events = c.logs.map((l) => l.event);
        expect(events).to.include("requeued");
        expect(events).to.not.include("uploaded");
        // A copy, visible right away, says it was interrupted once; no receive of it counted yet.
        const again = await aws.drain(queueUrl);
        expect(again).to.have.length(1);
        expect(JSON.parse(again[0].Body!)).to.deep.equal({ bucket, key: "slow.zip" });
        expect(again[0].MessageAttributes?.interruptions?.StringValue).to.equal("1");
        expect(again[0].Attributes?.ApproximateReceiveCount).to.equal("1");
    });
});

describe(`GeoJSON worker image ${GEOJSON_IMAGE} FROM ${RUNTIME_IMAGE} (pending when not built, unless CI or REQUIRE_ALL_TESTS=1)`, function () {
    this.timeout(120000);
    let moto: Moto;
    let aws: Aws;
    const samples = path.resolve(__dirname, "../examples/geojson/samples");

    before(async function () {
        requirePrerequisite(this, imageBuilt(GEOJSON_IMAGE) && imageBuilt(RUNTIME_IMAGE), `the images ${GEOJSON_IMAGE} and ${RUNTIME_IMAGE} (bash scripts/build-image.sh)`);
        moto = await startMoto();
        aws = new Aws(moto);
    });
    after(async function () {
        await moto?.stop();
    });

    it("converts a good file and dead-letters a bad one with GDAL's reason, read-only as uid 1000, then exits 0 when drained", async function () {
        const bucket = await aws.bucket("geojson-image-test");
        const { queueUrl, dlqUrl } = await aws.queues("geojson-image-test", 1);
        await aws.put(bucket, "in/parks.geojson", fs.readFileSync(path.join(samples, "parks.geojson")));
        await aws.put(bucket, "in/broken.geojson", fs.readFileSync(path.join(samples, "broken.geojson")));
        await aws.send(queueUrl, { bucket, key: "in/parks.geojson" });
        await aws.send(queueUrl, { bucket, key: "in/broken.geojson" });
        const env = { ...moto.env, QUEUE_URL: queueUrl, DLQ_URL: dlqUrl, WORKER_WAIT_SECONDS: "1", WORKER_IDLE_EXIT: "1", OUTPUT_SUFFIXES: '[".gpkg",".summary.json",".log"]' };
        const c = collect(runImage(`geojson-image-test-${process.pid}`, env, GEOJSON_IMAGE));
        const code = await c.exited;
        expect(code, c.stderr()).to.equal(0);
        const gpkg = await aws.get(bucket, "in/parks.gpkg");
        expect(gpkg?.subarray(0, 16).toString("latin1"), JSON.stringify(c.logs)).to.equal("SQLite format 3\0");
        const summary = JSON.parse(String(await aws.get(bucket, "in/parks.summary.json")));
        expect(summary).to.deep.include({ featureCount: 3, geometryTypes: { POINT: 1, POLYGON: 2 } });
        expect(summary.output.crs).to.equal("EPSG:3857");
        expect(summary.gdal).to.match(/^GDAL \d+\.\d+/);
        const report = JSON.parse(String(await aws.get(bucket, "in/broken.error.json")));
        expect(report.reason).to.match(/^node exited with 1: not valid GeoJSON \(GDAL ogrinfo exited with 1\): ERROR 1: At line 5, character 1: Unterminated object/);
        const dead = await aws.drain(dlqUrl);
        expect(dead.map((m) => JSON.parse(m.Body!).key)).to.deep.equal(["in/broken.geojson"]);
        expect(c.logs.filter((l) => l.event === "command").map((l) => (l.argv as string[]).slice(0, 2))).to.deep.equal([
            ["node", "/opt/geojson/geojson-to-gpkg.js"],
            ["node", "/opt/geojson/geojson-to-gpkg.js"],
        ]);
    });

    it("the runtime base alone carries no tool: without WORKER_COMMAND it exits 2 naming it", async function () {
        const c = collect(runImage(`runtime-image-test-${process.pid}`, { QUEUE_URL: "http://127.0.0.1:1/q" }, RUNTIME_IMAGE));
        expect(await c.exited).to.equal(2);
        expect(c.logs.find((l) => l.event === "exiting")?.reason).to.match(/^configuration error: WORKER_COMMAND must be a JSON array of strings/);
        const tools = podman(["run", "--rm", ...runFlags(), "--entrypoint", "sh", RUNTIME_IMAGE, "-c", "command -v povray ogr2ogr || echo none"]);
        expect(tools.stdout.trim(), tools.stderr).to.equal("none");
    });
});
