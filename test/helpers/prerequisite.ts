/**
 * What a test needs of the machine beyond the project's own files (a tool, a built image, a kernel feature). CI runs on
 * a machine `npm run setup` made, where every test must run: there a missing prerequisite fails the test; elsewhere
 * the test is skipped (pending), saying why.
 */

/** True where every test must run: in CI (`CI` set) or with REQUIRE_ALL_TESTS=1. */
export function allTestsRequired(): boolean {
    return !!process.env.CI || process.env.REQUIRE_ALL_TESTS === "1";
}

/** Skips the test (or the suite, from a hook) when `present` is false, or fails it where all tests are required. */
export function requirePrerequisite(ctx: Mocha.Context, present: boolean, why: string): void {
    if (present) return;
    if (allTestsRequired()) throw new Error(`missing prerequisite: ${why}`);
    console.log(`      (skipped: ${why})`);
    ctx.skip();
}
