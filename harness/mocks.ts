/**
 * The Pulumi mocks shared by every unit test: importing this module installs them (before any code under test is
 * loaded). They live with the CLI (`cli/local/mocks.ts`), whose offline run evaluates a stack under the same mocks.
 */
export * from "../cli/local/mocks";
