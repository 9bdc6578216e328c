// Mocha runs the TypeScript sources through ts-node (transpile only: `npm test` type-checks with tsc first).
process.env.TS_NODE_TRANSPILE_ONLY = "true";
module.exports = {
  require: ["ts-node/register"],
  reporter: "./test/helpers/reporter.js",
  extension: ["ts"],
  timeout: 120000,
  slow: 10000,
  exit: true,
};
