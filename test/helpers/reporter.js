// Mocha's spec reporter plus one plain closing line, "N passed, N failed[, N skipped]", that CI tools read.
"use strict";
const Mocha = require("mocha");

class SpecWithTotals extends Mocha.reporters.Spec {
    constructor(runner, options) {
        super(runner, options);
        runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
            const s = runner.stats || {};
            const skipped = s.pending ? `, ${s.pending} skipped` : "";
            process.stdout.write(`\n${s.passes || 0} passed, ${s.failures || 0} failed${skipped}\n`);
        });
    }
}
module.exports = SpecWithTotals;
