// Mutation testing of the browser library client/websession.js with StrykerJS
// (run it with `make mutate-js`, i.e. tools/mutate-js, which also checks the
// survivors against tools/mutants/js-equivalent.json).
//
// Only websession.js is mutated. The tests are the Node suite's files that
// need no server (client/test/*.test.mjs on the fakes of fake.mjs), all but
// three: integration.test.mjs needs a running mod_websession and skips without
// one; loading.test.mjs checks that the classic script declares no global but
// WebSession, which Stryker's instrumentation (it adds top-level helpers of
// its own) fails by design, and node 20 cannot leave out one test by name;
// declarations.test.mjs reads websession.js's source text (its DEFAULTS) to
// compare it with websession.d.ts, which the instrumented text no longer is.
// details.test.mjs repeats the loading checks that matter for mutants (the
// exports, a classic script without module) in a way that survives the
// instrumentation.
//
// The tap runner runs each test file in its own `node` process (node:test
// prints TAP when its output is not a terminal); coverage analysis is per
// test file, so a mutant only reruns the files that reach it.
//
// No incremental mode: every run starts from scratch, so the result never
// depends on a previous run's state. Reports go to build/stryker/.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
    packageManager: 'npm',
    testRunner: 'tap',
    plugins: ['@stryker-mutator/tap-runner'],
    tap: {
        testFiles: ['client/test/!(integration|loading|declarations).test.mjs'],
        nodeArgs: ['--test-reporter=tap'],
        forceBail: true,
    },
    mutate: ['client/websession.js'],
    coverageAnalysis: 'perTest',
    concurrency: 2,
    timeoutMS: 5000,
    timeoutFactor: 2,
    incremental: false,
    cleanTempDir: true,
    // The sandbox needs only the library, its tests and package.json.
    ignorePatterns: ['/*', '!/client', '!/package.json'],
    tempDirName: 'build/stryker/tmp',
    reporters: ['clear-text', 'progress-append-only', 'json', 'html'],
    jsonReporter: { fileName: 'build/stryker/mutation.json' },
    htmlReporter: { fileName: 'build/stryker/mutation.html' },
    clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
    thresholds: { high: 100, low: 90, break: null },
};
