/**
 * The job's (untrusted) POV-Ray INI, read the way POV-Ray 3.7 reads it and filtered to whitelisted options.
 *
 * An INI line is one of (POV-Ray 3.7 `ProcessOptions::ParseFile`):
 *   - `Key=Value`: one option per line; the value is a quoted string or the first word (POV-Ray reads nothing after
 *     it; whatever follows is reported as dropped), except `Input_File_Name`, whose unquoted value may hold spaces;
 *   - one or more command-line switches (`+W1920 +H1080 +A0.3`), possibly followed by one `Key=Value` option;
 *     a switch's parameter either follows its letters (`+W1920`) or is quoted right after them (`+O"a b.png"`);
 *   - `[section]`: options after it are not part of the render (POV-Ray reads them only for `file.ini[section]`);
 *   - a comment (`;` or `#`, and `//` here) or blank.
 * A switch is matched like POV-Ray does (`ProcessOptions::Parse_INI_Switch`): through SWITCHES in order (longer
 * switches first, so `+HI` is Include_Header and `+HR` High_Reproducibility before `+H` Height), case-insensitively,
 * taking the first entry whose letters prefix the switch and whose parameter rule (none / required / optional) fits
 * what follows. Each option a switch sets then goes through exactly the same check as its `Key=Value` form:
 *   - a whitelisted option (INI_WHITELIST) with a valid value is kept;
 *   - a whitelisted option with an invalid or out-of-range value is a problem: the job fails, naming the key (and
 *     the switch), the value and what is allowed;
 *   - every other option (shell-out `*_Command`, Library_Path, Output_File_Name, Include_Ini, Include_Header,
 *     console redirections, animation, ...), unknown switches and keys, and lines inside sections are dropped, with
 *     why, for the processor to log.
 */

export interface ValueRule {
    /** The canonical value, or null when `v` is not allowed. */
    check(v: string): string | null;
    /** What is allowed, for the error message ("1-8192", "on or off", ...). */
    allowed: string;
    /** Numeric rules: a well-formed number that fails the check is "out of range", anything else "not valid". */
    number?: "integer" | "number";
}

const BOOL = /^(on|off|true|false|yes|no|1|0)$/i;
const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const bool: ValueRule = { check: (v) => (BOOL.test(v) ? v : null), allowed: "on, off, true, false, yes, no, 1 or 0" };
const float: ValueRule = { check: (v) => (FLOAT.test(v) ? v : null), allowed: "a number", number: "number" };
const intRange = (lo: number, hi: number): ValueRule => ({
    check: (v) => (INT.test(v) && Number(v) >= lo && Number(v) <= hi ? String(Number(v)) : null),
    allowed: `${lo}-${hi}`,
    number: "integer",
});
const oneOf = (...vals: string[]): ValueRule => ({
    check: (v) => vals.find((x) => x.toLowerCase() === v.toLowerCase()) ?? null,
    allowed: vals.length === 2 ? `${vals[0]} or ${vals[1]}` : vals.join(", "),
    number: vals.every((x) => INT.test(x)) ? "integer" : undefined,
});
const gamma: ValueRule = { check: (v) => (FLOAT.test(v) || /^srgb$/i.test(v) ? v : null), allowed: "a number or sRGB" };

/** Largest Width/Height accepted by default. */
export const DEFAULT_MAX_DIMENSION = 8192;

/** INI options passed through (case-insensitive), with their value rules. Everything else is dropped. */
export function iniWhitelist(maxDimension: number = DEFAULT_MAX_DIMENSION): Record<string, ValueRule> {
    return {
        Width: intRange(1, maxDimension),
        Height: intRange(1, maxDimension),
        Antialias: bool,
        Antialias_Threshold: float,
        Antialias_Depth: intRange(1, 9),
        Antialias_Gamma: float,
        Sampling_Method: oneOf("1", "2"),
        Jitter: bool,
        Jitter_Amount: float,
        Quality: intRange(0, 11),
        Bounding: bool,
        Bounding_Threshold: intRange(0, 1000000),
        Bounding_Method: oneOf("1", "2"),
        Light_Buffer: bool,
        Vista_Buffer: bool,
        Remove_Bounds: bool,
        Split_Unions: bool,
        Output_Alpha: bool,
        Bits_Per_Color: intRange(5, 16),
        Display_Gamma: gamma,
        File_Gamma: gamma,
        Clock: float,
        Start_Column: float,
        End_Column: float,
        Start_Row: float,
        End_Row: float,
        High_Reproducibility: bool,
        // Input_File_Name and Declare are handled separately (path / identifier checks).
    };
}

/** What a switch's letters may be followed by. */
type Param = "none" | "required" | "optional";

export interface SwitchSpec {
    /** The switch's letters, e.g. "AM" for `+AM2`. */
    sw: string;
    param: Param;
    /** Boolean option set by the sign: `+` on, `-` off. */
    flag?: string;
    /** Option set to the parameter (when there is one). */
    option?: string;
    /** Options set from the parameter when it is not a plain value (`+FN16` is a file type and a bit depth). */
    map?: (param: string) => Array<[string, string]>;
    /** A switch POV-Ray 3.7 no longer has: always dropped, with this reason. */
    obsolete?: string;
}

/** `+F<type>[<bits>|g]`: Output_File_Type, then Bits_Per_Color or Grayscale_Output. */
function fileTypeSwitch(param: string): Array<[string, string]> {
    const rest = param.slice(1);
    if (rest === "") return [["Output_File_Type", param]];
    if (/^\d+$/.test(rest)) return [["Output_File_Type", param[0]], ["Bits_Per_Color", rest]];
    if (/^g$/i.test(rest)) return [["Output_File_Type", param[0]], ["Grayscale_Output", "on"]];
    return [["Output_File_Type", param]];
}

const req = (sw: string, option: string): SwitchSpec => ({ sw, param: "required", option });
const on = (sw: string, flag: string): SwitchSpec => ({ sw, param: "none", flag });
const opt = (sw: string, flag: string, option: string): SwitchSpec => ({ sw, param: "optional", flag, option });

/**
 * POV-Ray 3.7's command-line switch table (`RenderOptions_Cmd_Table` in source/frontend/processrenderoptions.cpp),
 * in its order: within a letter, longer switches first. Switches whose parameter the manual documents as optional
 * (`+A[n.n]`, `+J[n.n]`, `+MB[n]`, `+D[xx]`, `+F[t]`, `+G?[file]`, `+TH[m]`, `+X[n]`) are one entry with an optional
 * parameter, as in POV-Ray 3.8 (3.7.0.x accepts `+A` with a threshold only when it starts with `0`, as in `+A0.3`).
 * HN/HS/HT are POV-Ray 3.1's histogram switches, dropped as obsolete (3.7 would read them as `+H` with a bad height).
 */
export const SWITCHES: readonly SwitchSpec[] = [
    req("AG", "Antialias_Gamma"),
    req("AM", "Sampling_Method"),
    opt("A", "Antialias", "Antialias_Threshold"),
    req("BM", "Bounding_Method"),
    req("BS", "Render_Block_Size"),
    on("B", "Bounding"),
    on("C", "Continue_Trace"),
    opt("D", "Display", "Video_Mode"),
    req("EC", "End_Column"),
    req("EF0", "Subset_End_Frame"),
    req("EF", "Subset_End_Frame"),
    req("EP", "Preview_End_Size"),
    req("ER", "End_Row"),
    { sw: "F", param: "optional", flag: "Output_To_File", map: fileTypeSwitch },
    opt("GA", "All_Console", "All_File"),
    opt("GD", "Debug_Console", "Debug_File"),
    opt("GF", "Fatal_Console", "Fatal_File"),
    req("GI", "Create_Ini"),
    on("GP", "Append_File"),
    opt("GR", "Render_Console", "Render_File"),
    opt("GS", "Statistic_Console", "Statistic_File"),
    opt("GW", "Warning_Console", "Warning_File"),
    req("HI", "Include_Header"),
    { sw: "HN", param: "optional", obsolete: "obsolete histogram switch (not in POV-Ray 3.7)" },
    on("HR", "High_Reproducibility"),
    { sw: "HS", param: "optional", obsolete: "obsolete histogram switch (not in POV-Ray 3.7)" },
    { sw: "HT", param: "optional", obsolete: "obsolete histogram switch (not in POV-Ray 3.7)" },
    req("H", "Height"),
    req("I", "Input_File_Name"),
    opt("J", "Jitter", "Jitter_Amount"),
    on("KC", "Cyclic_Animation"),
    req("KI", "Initial_Clock"),
    req("KFF", "Final_Frame"),
    req("KFI", "Initial_Frame"),
    req("KF", "Final_Clock"),
    on("KLA", "Clockless_Animation"),
    req("K", "Clock"),
    req("L", "Library_Path"),
    opt("MB", "Bounding", "Bounding_Threshold"),
    req("MI", "Max_Image_Buffer_Memory"),
    req("MV", "Version"),
    req("O", "Output_File_Name"),
    on("P", "Pause_When_Done"),
    req("Q", "Quality"),
    on("RFI", "Radiosity_From_File"),
    on("RFO", "Radiosity_To_File"),
    req("RF", "Radiosity_File_Name"),
    req("RS", "Render_Block_Step"),
    req("RP", "Render_Pattern"),
    on("RTR", "Real_Time_Raytracing"),
    on("RVP", "Radiosity_Vain_Pretrace"),
    req("R", "Antialias_Depth"),
    req("SC", "Start_Column"),
    req("SF0", "Subset_Start_Frame"),
    req("SF", "Subset_Start_Frame"),
    req("SP", "Preview_Start_Size"),
    req("SR", "Start_Row"),
    req("STP", "Frame_Step"),
    on("SU", "Split_Unions"),
    opt("TH", "Dither", "Dither_Method"),
    on("UA", "Output_Alpha"),
    on("UD", "Draw_Vistas"),
    on("UF", "Field_Render"),
    on("UL", "Light_Buffer"),
    on("UO", "Odd_Field"),
    on("UR", "Remove_Bounds"),
    on("UV", "Vista_Buffer"),
    on("V", "Verbose"),
    req("WL", "Warning_Level"),
    req("WT", "Work_Threads"),
    req("W", "Width"),
    opt("X", "Test_Abort", "Test_Abort_Count"),
];

export interface SwitchMatch {
    spec: SwitchSpec;
    /** The parameter ("" when none). */
    param: string;
    /** The options the switch sets, in POV-Ray's order (flag first), before any whitelist check. */
    options: Array<[string, string]>;
}

/**
 * Matches one switch (`sign` + `body`, `quoted` = a quoted parameter right after it) against SWITCHES the way
 * POV-Ray does; null for an unknown switch.
 */
export function matchSwitch(sign: "+" | "-", body: string, quoted?: string): SwitchMatch | null {
    const upper = body.toUpperCase();
    for (const spec of SWITCHES) {
        if (!upper.startsWith(spec.sw)) continue;
        let param = body.slice(spec.sw.length);
        if (quoted !== undefined) {
            // A quoted parameter belongs to a switch spelled exactly; a longer one is unknown (as in POV-Ray).
            if (param !== "") return null;
            param = quoted;
        }
        const fits = spec.param === "optional" || (spec.param === "required") === (param !== "");
        if (!fits) continue;
        const options: Array<[string, string]> = [];
        if (spec.flag) options.push([spec.flag, sign === "+" ? "on" : "off"]);
        if (param !== "") {
            if (spec.map) options.push(...spec.map(param));
            else if (spec.option) options.push([spec.option, param]);
        }
        return { spec, param, options };
    }
    return null;
}

export interface Dropped {
    /** The key, switch or text dropped (as written in the INI). */
    key: string;
    reason: string;
}

export interface SanitizedIni {
    /** Whitelisted `Key=Value` options (canonical key spelling), in INI order. */
    options: Array<[string, string]>;
    /** Input_File_Name from the INI (unchecked, relative to the INI's directory), if any. */
    inputFile?: string;
    /** `Declare=Name=Value` pairs (identifier + numeric value). */
    declares: Array<[string, string]>;
    /** Keys, switches and text dropped, with why. */
    dropped: Dropped[];
    /** Whitelisted options with a value that is not allowed, each naming the key (and switch), value and rule. */
    invalid: string[];
}

/** Cuts a line at its comment (`;`, `#` or `//` outside double quotes). */
function stripComment(line: string): string {
    let inQuote = false;
    for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === '"') inQuote = !inQuote;
        else if (!inQuote && (c === ";" || c === "#" || (c === "/" && line[i + 1] === "/"))) return line.slice(0, i);
    }
    return line;
}

/** Options the worker sets itself in the INI POV-Ray reads, and what it sets them to (for the drop reason). */
const SET_BY_WORKER: Record<string, string> = {
    Display: "the worker renders with Display=off",
    Output_To_File: "the worker always writes the image",
    Output_File_Type: "the worker always writes PNG",
    Output_File_Name: "the worker names the output",
    Library_Path: "the worker sets the job's directory and the standard include files",
    Work_Threads: "the worker sets the thread count",
    Verbose: "the worker sets Verbose=on for the render log",
    Pause_When_Done: "the worker sets Pause_When_Done=off",
};

const show = (v: string) => (v.length > 40 ? JSON.stringify(v.slice(0, 40) + "…") : v);

/** Parses an untrusted POV-Ray INI and keeps only whitelisted options (see the file comment). */
export function sanitizeIni(text: string, maxDimension = DEFAULT_MAX_DIMENSION): SanitizedIni {
    const wl = iniWhitelist(maxDimension);
    const canonical = new Map(Object.keys(wl).map((k) => [k.toLowerCase(), k]));
    const out: SanitizedIni = { options: [], declares: [], dropped: [], invalid: [] };

    /**
     * One option, from a `Key=Value` line or set by a switch (`via`): kept, invalid, or dropped (returns the drop
     * reason, for the caller to report).
     */
    const option = (key: string, value: string, via?: string): string | null => {
        const lower = key.toLowerCase();
        const named = (k: string) => (via ? `${via} (${k}=${show(value)})` : `${k}=${show(value)}`);
        if (lower === "input_file_name") {
            if (via) return "not accepted from a switch (write Input_File_Name=<file>)";
            out.inputFile = value;
            return null;
        }
        if (lower === "declare") {
            const m = /^([A-Za-z_][A-Za-z0-9_]{0,39})=(.*)$/.exec(value);
            if (m && FLOAT.test(m[2].trim())) out.declares.push([m[1], m[2].trim()]);
            else out.invalid.push(`${named("Declare")} is not valid: allowed Declare=<identifier>=<number>`);
            return null;
        }
        const canon = canonical.get(lower);
        if (!canon) {
            const fixed = Object.keys(SET_BY_WORKER).find((k) => k.toLowerCase() === lower);
            return fixed ? `not in the whitelist (${SET_BY_WORKER[fixed]})` : "not in the whitelist";
        }
        const rule = wl[canon];
        const ok = rule.check(value);
        if (ok !== null) {
            out.options.push([canon, ok]);
            return null;
        }
        const wellFormed = rule.number === "integer" ? INT.test(value) : rule.number === "number" ? FLOAT.test(value) : false;
        const what = wellFormed ? "is out of range" : rule.number === "integer" ? "is not an integer" : "is not valid";
        if (value === "") out.invalid.push(`${via ? `${via} (${canon})` : canon} has no value: allowed ${rule.allowed}`);
        else out.invalid.push(`${named(canon)} ${what}: allowed ${rule.allowed}`);
        return null;
    };

    /** A `Key=Value` option starting at `text` (the rest of the line). */
    const keyValue = (text: string) => {
        const eq = text.indexOf("=");
        const key = text.slice(0, eq).trim();
        let rest = text.slice(eq + 1).trim();
        let value: string;
        if (rest.startsWith('"') || rest.startsWith("'")) {
            const end = rest.indexOf(rest[0], 1);
            value = end < 0 ? rest.slice(1) : rest.slice(1, end);
            rest = end < 0 ? "" : rest.slice(end + 1).trim();
        } else if (key.toLowerCase() === "input_file_name" || !(canonical.has(key.toLowerCase()) || key.toLowerCase() === "declare")) {
            // POV-Ray reads an unquoted path with spaces (and a *_Command) to the end of the line; a dropped key
            // is dropped whole.
            value = rest;
            rest = "";
        } else {
            const m = /^(\S*)\s*(.*)$/.exec(rest)!;
            value = m[1];
            rest = m[2];
        }
        const why = option(key, value);
        if (why) out.dropped.push({ key, reason: why });
        if (rest !== "") {
            out.dropped.push({ key: rest, reason: `after ${key}=${show(value)}: POV-Ray reads one Key=Value option per line and ignores the rest` });
        }
    };

    /** A switch token (`+W1920`, `-D`, `+O` + quoted parameter). */
    const switchToken = (token: string, quoted?: string) => {
        const shown = quoted === undefined ? token : `${token}"${quoted}"`;
        const sign = token[0] as "+" | "-";
        const m = matchSwitch(sign, token.slice(1), quoted);
        if (!m) {
            // `+W` without its value: POV-Ray calls it unknown; it means Width, so it is judged as `Width=`.
            const bare = quoted === undefined ? SWITCHES.find((s) => s.param === "required" && s.sw === token.slice(1).toUpperCase()) : undefined;
            if (!bare?.option) {
                out.dropped.push({ key: shown, reason: "unknown switch" });
                return;
            }
            const why = option(bare.option, "", shown);
            if (why) out.dropped.push({ key: shown, reason: `switch for ${bare.option}: ${why}` });
            return;
        }
        if (m.spec.obsolete) {
            out.dropped.push({ key: shown, reason: m.spec.obsolete });
            return;
        }
        // Options dropped for the same reason are reported together: "switch for Output_To_File, Output_File_Type: ...".
        const byReason = new Map<string, string[]>();
        for (const [k, v] of m.options) {
            const why = option(k, v, shown);
            if (why) byReason.set(why, [...(byReason.get(why) ?? []), k]);
        }
        if (byReason.size) {
            const reason = [...byReason].map(([why, keys]) => `${keys.join(", ")}: ${why}`).join("; ");
            out.dropped.push({ key: shown, reason: `switch for ${reason}` });
        }
    };

    let section: string | null = null;
    for (const rawLine of text.split(/\r\n|\r|\n/)) {
        const line = stripComment(rawLine).trim();
        if (line === "") continue;
        const sec = /^\[(.*)\]$/.exec(line);
        if (sec) {
            section = sec[1];
            continue;
        }
        if (section !== null) {
            const eq = line.indexOf("=");
            const key = /^[A-Za-z0-9_]/.test(line) && eq > 0 ? line.slice(0, eq).trim() : line.slice(0, 60);
            out.dropped.push({ key, reason: `inside section [${section}] (sections are not rendered)` });
            continue;
        }
        // Walk the line: switches, then at most one Key=Value option (which takes the rest of the line).
        let i = 0;
        while (i < line.length) {
            while (i < line.length && /\s/.test(line[i])) i++;
            if (i >= line.length) break;
            const c = line[i];
            if (c === "+" || c === "-") {
                let j = i + 1;
                while (j < line.length && !/[\s"']/.test(line[j])) j++;
                const token = line.slice(i, j);
                let quoted: string | undefined;
                if (line[j] === '"' || line[j] === "'") {
                    const end = line.indexOf(line[j], j + 1);
                    quoted = end < 0 ? line.slice(j + 1) : line.slice(j + 1, end);
                    j = end < 0 ? line.length : end + 1;
                }
                switchToken(token, quoted);
                i = j;
                continue;
            }
            if (/^[A-Za-z0-9_]+\s*=/.test(line.slice(i))) {
                keyValue(line.slice(i));
                break;
            }
            const word = /^\S*/.exec(line.slice(i))![0];
            out.dropped.push({ key: word.slice(0, 60), reason: "not a switch or Key=Value option" });
            i += word.length;
        }
    }
    return out;
}
