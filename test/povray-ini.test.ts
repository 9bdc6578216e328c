/**
 * The job INI parser (worker-image/src/ini.ts): POV-Ray 3.7's command-line switches in INI lines, mapped to the
 * same whitelist as `Key=Value` options; out-of-range values fail the job. The mapping is table-tested against the
 * switch/option pairs of POV-Ray's manual ("Command-line options"), and the same rows are run through the real
 * povray, whose Create_Ini (`+GI`) output says which options it actually set.
 */
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PermanentError } from "../worker-image/src/errors";
import { SWITCHES, matchSwitch, sanitizeIni } from "../worker-image/src/ini";
import { findScene } from "../worker-image/src/povray";

const REPO = path.resolve(__dirname, "..");
const TINY_POV = fs.readFileSync(path.join(REPO, "test/fixtures/scenes/tiny.pov"));

type Opt = [string, string];

/** Switch line → the options kept (in order). Each row is a documented switch/option pair of POV-Ray 3.7. */
const KEPT: Array<{ line: string; kept: Opt[]; dropped?: string[]; povray37?: false }> = [
    { line: "+W1920", kept: [["Width", "1920"]] },
    { line: "+H1080", kept: [["Height", "1080"]] },
    { line: "+W1920 +H1080", kept: [["Width", "1920"], ["Height", "1080"]] },
    { line: "+w64 +h48", kept: [["Width", "64"], ["Height", "48"]] },
    { line: "-W64", kept: [["Width", "64"]] },
    { line: "+A", kept: [["Antialias", "on"]] },
    { line: "-A", kept: [["Antialias", "off"]] },
    { line: "+A0.3", kept: [["Antialias", "on"], ["Antialias_Threshold", "0.3"]] },
    { line: "-A0.1", kept: [["Antialias", "off"], ["Antialias_Threshold", "0.1"]] },
    // Documented as +An.n; POV-Ray 3.7.0.x itself only reads a threshold starting with 0 (its table has "A0").
    { line: "+A.2", kept: [["Antialias", "on"], ["Antialias_Threshold", ".2"]], povray37: false },
    { line: "+AM2", kept: [["Sampling_Method", "2"]] },
    { line: "+AG2.2", kept: [["Antialias_Gamma", "2.2"]] },
    { line: "+R4", kept: [["Antialias_Depth", "4"]] },
    { line: "+J", kept: [["Jitter", "on"]] },
    { line: "-J", kept: [["Jitter", "off"]] },
    { line: "+J0.5", kept: [["Jitter", "on"], ["Jitter_Amount", "0.5"]] },
    { line: "+Q9", kept: [["Quality", "9"]] },
    { line: "+Q0", kept: [["Quality", "0"]] },
    { line: "+B", kept: [["Bounding", "on"]] },
    { line: "-B", kept: [["Bounding", "off"]] },
    { line: "+MB", kept: [["Bounding", "on"]] },
    { line: "+MB25", kept: [["Bounding", "on"], ["Bounding_Threshold", "25"]] },
    { line: "-MB", kept: [["Bounding", "off"]] },
    { line: "+BM2", kept: [["Bounding_Method", "2"]] },
    { line: "+UA", kept: [["Output_Alpha", "on"]] },
    { line: "-UA", kept: [["Output_Alpha", "off"]] },
    { line: "+UL", kept: [["Light_Buffer", "on"]] },
    { line: "-UV", kept: [["Vista_Buffer", "off"]] },
    { line: "+UR", kept: [["Remove_Bounds", "on"]] },
    { line: "+SU", kept: [["Split_Unions", "on"]] },
    { line: "+HR", kept: [["High_Reproducibility", "on"]] },
    { line: "-HR", kept: [["High_Reproducibility", "off"]] },
    { line: "+K0.5", kept: [["Clock", "0.5"]] },
    { line: "+SC0.25 +EC0.75", kept: [["Start_Column", "0.25"], ["End_Column", "0.75"]] },
    { line: "+SR2 +ER5", kept: [["Start_Row", "2"], ["End_Row", "5"]] },
    // +F<type><bits>: the file type is the worker's (PNG), the bit depth is the job's.
    { line: "+FN16", kept: [["Bits_Per_Color", "16"]], dropped: ["+FN16"] },
    // Several switches, comments, a Key=Value option after switches, mixed case.
    { line: "+W64 +H48 +A0.3 +AM2 +R3 +Q9 ; size and antialiasing", kept: [["Width", "64"], ["Height", "48"], ["Antialias", "on"], ["Antialias_Threshold", "0.3"], ["Sampling_Method", "2"], ["Antialias_Depth", "3"], ["Quality", "9"]] },
    { line: "+W64 # comment +H48", kept: [["Width", "64"]] },
    { line: "+W64 Height=48", kept: [["Width", "64"], ["Height", "48"]] },
    { line: "\t+W64\t-UA  ", kept: [["Width", "64"], ["Output_Alpha", "off"]] },
    // POV-Ray reads one Key=Value option per line and ignores what follows it.
    { line: "Width=10 +H5", kept: [["Width", "10"]], dropped: ["+H5"] },
    { line: "+W10 Height=5 +H7", kept: [["Width", "10"], ["Height", "5"]], dropped: ["+H7"] },
];

/** Switches that are dropped (and logged), with the option named in the reason. */
const DROPPED: Array<{ line: string; key: string; reason: RegExp }> = [
    { line: "+O/etc/x", key: "+O/etc/x", reason: /^switch for Output_File_Name: not in the whitelist/ },
    { line: '+O"/tmp/a b.png"', key: '+O"/tmp/a b.png"', reason: /Output_File_Name/ },
    { line: "+L/tmp", key: "+L/tmp", reason: /^switch for Library_Path: not in the whitelist/ },
    { line: "+HIfoo.inc", key: "+HIfoo.inc", reason: /^switch for Include_Header: not in the whitelist/ },
    { line: "+Iscene.pov", key: "+Iscene.pov", reason: /^switch for Input_File_Name: not accepted from a switch \(write Input_File_Name=<file>\)/ },
    { line: "+GA/tmp/all.log", key: "+GA/tmp/all.log", reason: /^switch for All_Console, All_File: not in the whitelist/ },
    { line: "-GS", key: "-GS", reason: /Statistic_Console/ },
    { line: "+GI/tmp/out.ini", key: "+GI/tmp/out.ini", reason: /Create_Ini/ },
    { line: "+D", key: "+D", reason: /^switch for Display: not in the whitelist \(the worker renders with Display=off\)/ },
    { line: "-D", key: "-D", reason: /Display/ },
    { line: "+P", key: "+P", reason: /Pause_When_Done/ },
    { line: "+V", key: "+V", reason: /Verbose/ },
    { line: "+WT4", key: "+WT4", reason: /Work_Threads/ },
    { line: "+WL2", key: "+WL2", reason: /Warning_Level/ },
    { line: "+X", key: "+X", reason: /Test_Abort/ },
    { line: "+FT", key: "+FT", reason: /^switch for Output_To_File: not in the whitelist .*; Output_File_Type: not in the whitelist \(the worker always writes PNG\)$/ },
    { line: "+KFI1", key: "+KFI1", reason: /Initial_Frame/ },
    { line: "+KFF10", key: "+KFF10", reason: /Final_Frame/ },
    { line: "+KF1", key: "+KF1", reason: /Final_Clock/ },
    { line: "+KI0", key: "+KI0", reason: /Initial_Clock/ },
    { line: "+KC", key: "+KC", reason: /Cyclic_Animation/ },
    { line: "+RFIx", key: "+RFIx", reason: /Radiosity_File_Name/ },
    { line: "+RFI", key: "+RFI", reason: /Radiosity_From_File/ },
    { line: "+SF3", key: "+SF3", reason: /Subset_Start_Frame/ },
    { line: "+C", key: "+C", reason: /Continue_Trace/ },
    { line: "+MV3.5", key: "+MV3.5", reason: /Version/ },
    { line: "+HT", key: "+HT", reason: /^obsolete histogram switch/ },
    { line: "+ZZ", key: "+ZZ", reason: /^unknown switch$/ },
    { line: "+B100", key: "+B100", reason: /^unknown switch$/ },
    { line: "+UAx", key: "+UAx", reason: /^unknown switch$/ },
    { line: '+Ofoo"x"', key: '+Ofoo"x"', reason: /^unknown switch$/ },
];

/** Whitelisted options with a value out of range or malformed: the job fails with these reasons. */
const INVALID: Array<{ line: string; problem: string }> = [
    { line: "Width=100000", problem: "Width=100000 is out of range: allowed 1-8192" },
    { line: "Height=0", problem: "Height=0 is out of range: allowed 1-8192" },
    { line: "width=64px", problem: "Width=64px is not an integer: allowed 1-8192" },
    { line: "Width=", problem: "Width has no value: allowed 1-8192" },
    { line: "Quality=99", problem: "Quality=99 is out of range: allowed 0-11" },
    { line: "Sampling_Method=3", problem: "Sampling_Method=3 is out of range: allowed 1 or 2" },
    { line: "Antialias=maybe", problem: "Antialias=maybe is not valid: allowed on, off, true, false, yes, no, 1 or 0" },
    { line: "Antialias_Threshold=lots", problem: "Antialias_Threshold=lots is not valid: allowed a number" },
    { line: "Declare=Bad=foo", problem: "Declare=Bad=foo is not valid: allowed Declare=<identifier>=<number>" },
    { line: "+W100000", problem: "+W100000 (Width=100000) is out of range: allowed 1-8192" },
    { line: "+W0", problem: "+W0 (Width=0) is out of range: allowed 1-8192" },
    // POV-Ray 3.7 itself takes a negative width and allocates gigabytes.
    { line: "+W-5", problem: "+W-5 (Width=-5) is out of range: allowed 1-8192" },
    { line: "+Wide", problem: "+Wide (Width=ide) is not an integer: allowed 1-8192" },
    { line: "+W", problem: "+W (Width) has no value: allowed 1-8192" },
    { line: "+H99999", problem: "+H99999 (Height=99999) is out of range: allowed 1-8192" },
    { line: "+Q12", problem: "+Q12 (Quality=12) is out of range: allowed 0-11" },
    { line: "+AM3", problem: "+AM3 (Sampling_Method=3) is out of range: allowed 1 or 2" },
    { line: "+R10", problem: "+R10 (Antialias_Depth=10) is out of range: allowed 1-9" },
    { line: "+A0.3x", problem: "+A0.3x (Antialias_Threshold=0.3x) is not valid: allowed a number" },
    { line: "+FN32", problem: "+FN32 (Bits_Per_Color=32) is out of range: allowed 5-16" },
];

describe("job INI: POV-Ray switches and value ranges (worker-image/src/ini.ts)", function () {
    describe("switch → option table (POV-Ray 3.7's documented pairs)", function () {
        for (const row of KEPT) {
            it(`${JSON.stringify(row.line)} → ${row.kept.map(([k, v]) => `${k}=${v}`).join(" ")}`, function () {
                const s = sanitizeIni(row.line + "\n");
                expect(s.options).to.deep.equal(row.kept);
                expect(s.invalid).to.deep.equal([]);
                expect(s.dropped.map((d) => d.key)).to.deep.equal(row.dropped ?? []);
            });
        }
        for (const row of DROPPED) {
            it(`drops ${JSON.stringify(row.line)} with the option it sets`, function () {
                const s = sanitizeIni(row.line + "\n");
                expect(s.options).to.deep.equal([]);
                expect(s.invalid).to.deep.equal([]);
                expect(s.dropped).to.have.length(1);
                expect(s.dropped[0].key).to.equal(row.key);
                expect(s.dropped[0].reason).to.match(row.reason);
            });
        }
        for (const row of INVALID) {
            it(`fails ${JSON.stringify(row.line)}: ${row.problem}`, function () {
                const s = sanitizeIni(row.line + "\n");
                expect(s.invalid).to.deep.equal([row.problem]);
            });
        }

        it("matches the longest switch first (+HI/+HR before +H, +AM/+AG before +A, +KFI/+KFF/+KF/+KI before +K, +RFI/+RF before +R)", function () {
            const opts = (sw: string) => matchSwitch("+", sw)?.options.map(([k]) => k);
            expect(opts("HIx.inc")).to.deep.equal(["Include_Header"]);
            expect(opts("HR")).to.deep.equal(["High_Reproducibility"]);
            expect(opts("H100")).to.deep.equal(["Height"]);
            expect(opts("AM2")).to.deep.equal(["Sampling_Method"]);
            expect(opts("AG2")).to.deep.equal(["Antialias_Gamma"]);
            expect(opts("A2")).to.deep.equal(["Antialias", "Antialias_Threshold"]);
            expect(opts("KFI2")).to.deep.equal(["Initial_Frame"]);
            expect(opts("KFF2")).to.deep.equal(["Final_Frame"]);
            expect(opts("KF2")).to.deep.equal(["Final_Clock"]);
            expect(opts("KI2")).to.deep.equal(["Initial_Clock"]);
            expect(opts("K2")).to.deep.equal(["Clock"]);
            expect(opts("RFI")).to.deep.equal(["Radiosity_From_File"]);
            expect(opts("RFx")).to.deep.equal(["Radiosity_File_Name"]);
            expect(opts("R3")).to.deep.equal(["Antialias_Depth"]);
            expect(opts("WT2")).to.deep.equal(["Work_Threads"]);
            expect(opts("W2")).to.deep.equal(["Width"]);
            // Case-insensitive, like POV-Ray.
            expect(opts("hi/etc/passwd")).to.deep.equal(["Include_Header"]);
        });

        it("orders SWITCHES so that no entry hides a later, longer one", function () {
            const hidden: string[] = [];
            SWITCHES.forEach((later, j) => {
                for (const earlier of SWITCHES.slice(0, j)) {
                    // An earlier entry that takes a parameter and whose letters prefix the later one swallows it.
                    if (later.sw !== earlier.sw && later.sw.startsWith(earlier.sw) && earlier.param !== "none") {
                        hidden.push(`${earlier.sw} hides ${later.sw}`);
                    }
                }
                expect(matchSwitch("+", later.sw + (later.param === "required" ? "1" : ""))?.spec, later.sw).to.equal(later);
            });
            expect(hidden).to.deep.equal([]);
        });

        it("keeps a quoted switch parameter whole and reads both quote kinds", function () {
            const s = sanitizeIni("+O\"a b;c.png\" +L'/x y' +W8\n");
            expect(s.dropped.map((d) => d.key)).to.deep.equal(['+O"a b;c.png"', '+L"/x y"']);
            expect(s.options).to.deep.equal([["Width", "8"]]);
        });

        it("drops switch lines inside a [section] like any other option there", function () {
            const s = sanitizeIni("+W8\n[hi-res]\n+W1920 +H1080\nWidth=4000\n");
            expect(s.options).to.deep.equal([["Width", "8"]]);
            expect(s.dropped.map((d) => d.key)).to.deep.equal(["+W1920 +H1080", "Width"]);
            expect(s.dropped[0].reason).to.match(/inside section \[hi-res\]/);
        });

        it("lists every invalid value of an INI, switch and Key=Value form alike", function () {
            const s = sanitizeIni("+W100000 +H0\nQuality=99\n+W64\n");
            expect(s.invalid).to.deep.equal([
                "+W100000 (Width=100000) is out of range: allowed 1-8192",
                "+H0 (Height=0) is out of range: allowed 1-8192",
                "Quality=99 is out of range: allowed 0-11",
            ]);
        });

        it("uses the processor's maxDimension for the Width/Height range", function () {
            expect(sanitizeIni("+W16384\n", 16384).options).to.deep.equal([["Width", "16384"]]);
            expect(sanitizeIni("+W16385\n", 16384).invalid).to.deep.equal(["+W16385 (Width=16385) is out of range: allowed 1-16384"]);
        });
    });

    describe("findScene: an invalid value fails the job", function () {
        let dir: string;
        beforeEach(function () {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "povray-ini-"));
            fs.writeFileSync(path.join(dir, "spheres.pov"), TINY_POV);
        });
        afterEach(function () {
            fs.rmSync(dir, { recursive: true, force: true });
        });

        it("throws a PermanentError naming the INI, the key, the value and the allowed range", function () {
            fs.writeFileSync(path.join(dir, "spheres.ini"), "Input_File_Name=spheres.pov\nWidth=100000\n");
            expect(() => findScene(dir, "spheres")).to.throw(PermanentError, /^spheres\.ini: Width=100000 is out of range: allowed 1-8192$/);
            fs.writeFileSync(path.join(dir, "spheres.ini"), "+W100000 +H600\n");
            expect(() => findScene(dir, "spheres")).to.throw(PermanentError, /^spheres\.ini: \+W100000 \(Width=100000\) is out of range: allowed 1-8192$/);
        });

        it("names at most 10 invalid values and counts the rest", function () {
            fs.writeFileSync(path.join(dir, "spheres.ini"), "Width=0\n".repeat(13));
            let message = "";
            try {
                findScene(dir, "spheres");
            } catch (e) {
                message = (e as Error).message;
            }
            expect(message.match(/Width=0 is out of range/g)).to.have.length(10);
            expect(message).to.match(/; and 3 more invalid value\(s\)$/);
        });

        it("accepts the sample scene's INI (examples/spheres) and the switch form of the same settings", function () {
            const sample = fs.readFileSync(path.join(REPO, "examples/spheres/spheres.ini"), "utf8");
            fs.writeFileSync(path.join(dir, "spheres.ini"), sample);
            const s = findScene(dir, "spheres").sanitized!;
            expect(s.invalid).to.deep.equal([]);
            // The size examples/README.md claims for it is the size it asks for.
            const claimed = /`spheres\.pov` \+ `spheres\.ini`, (\d+)x(\d+)/.exec(fs.readFileSync(path.join(REPO, "examples/README.md"), "utf8"));
            expect(claimed, "examples/README.md names the sample's size").to.not.equal(null);
            const opt = (k: string) => s.options.filter(([key]) => key === k).map(([, v]) => v).pop();
            expect([opt("Width"), opt("Height")]).to.deep.equal([claimed![1], claimed![2]]);
            fs.writeFileSync(path.join(dir, "spheres.ini"), "+Ispheres.pov\n+W320 +H240 +A0.3 +R3 +Q9\n");
            const w = findScene(dir, "spheres").sanitized!;
            expect(w.options).to.deep.equal([["Width", "320"], ["Height", "240"], ["Antialias", "on"], ["Antialias_Threshold", "0.3"], ["Antialias_Depth", "3"], ["Quality", "9"]]);
        });
    });

    describe("the real povray agrees (Create_Ini of each row)", function () {
        const bin = process.env.POVRAY_BIN ?? "povray";
        let dir: string;
        let baseline: Map<string, string>;

        /** Runs povray on `line` (after a small fixed size) and returns the options it wrote with +GI. */
        function povrayOptions(line: string): Map<string, string> {
            const ini = path.join(dir, "job.ini");
            const out = path.join(dir, "written.ini");
            fs.rmSync(out, { force: true });
            fs.writeFileSync(ini, `Input_File_Name=tiny.pov\nWidth=8\nHeight=6\n${line}\n`);
            const run = spawnSync(bin, ["job.ini", "-D", "+Oout.png", "+GIwritten.ini", "-P", "-V"], {
                cwd: dir,
                env: { PATH: process.env.PATH, HOME: dir },
                encoding: "utf8",
                timeout: 60000,
            });
            expect(run.status, `povray on ${JSON.stringify(line)}: ${run.stderr}`).to.equal(0);
            const opts = new Map<string, string>();
            for (const l of fs.readFileSync(out, "utf8").split("\n")) {
                const m = /^([A-Za-z_]+)=(.*)$/.exec(l);
                // Library_Path is written once per directory: keep them all.
                if (m) opts.set(m[1].toLowerCase(), opts.has(m[1].toLowerCase()) ? `${opts.get(m[1].toLowerCase())}|${m[2]}` : m[2]);
            }
            return opts;
        }
        const norm = (v: string) => {
            const t = v.replace(/^"|"$/g, "").toLowerCase();
            if (/^(on|true|yes)$/.test(t)) return "on";
            if (/^(off|false|no)$/.test(t)) return "off";
            return Number.isFinite(Number(t)) && t !== "" ? String(Number(t)) : t;
        };

        before(function () {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "povray-ini-real-"));
            fs.writeFileSync(path.join(dir, "tiny.pov"), TINY_POV);
            baseline = povrayOptions("");
        });
        after(function () {
            fs.rmSync(dir, { recursive: true, force: true });
        });

        const rows = [
            ...KEPT.filter((r) => r.povray37 !== false).map((r) => r.line),
            // Dropped switches that are harmless to run: POV-Ray sets exactly the options the drop reason names.
            "+L/tmp",
            "+FT",
            "+FN16",
            "+KC",
            "+MV3.6",
            "-GS",
            "+WL2",
        ];
        for (const line of rows) {
            it(`${JSON.stringify(line)}: POV-Ray sets what the worker keeps, and only options the worker recognised`, function () {
                const got = povrayOptions(line);
                const s = sanitizeIni(line + "\n");
                // Every option the worker keeps is what POV-Ray set (the last one of a key wins in both).
                const kept = new Map(s.options.map(([k, v]) => [k.toLowerCase(), v]));
                for (const [k, v] of kept) expect(norm(got.get(k) ?? "(unset)"), k).to.equal(norm(v));
                // Every option POV-Ray changed is one the worker kept, or names in a drop reason.
                const reasons = s.dropped.map((d) => d.reason.toLowerCase()).join(" ");
                const changed = [...got].filter(([k, v]) => baseline.get(k) !== v).map(([k]) => k);
                for (const k of changed) expect(kept.has(k) || reasons.includes(k), `${k} set by POV-Ray`).to.equal(true);
                if (line === "+L/tmp") expect(changed).to.deep.equal(["library_path"]);
            });
        }
    });
});
