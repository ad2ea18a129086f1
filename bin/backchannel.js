#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` through `prepare`).
let cli;
try {
  cli = await import('../dist/src/cli/main.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('backchannel: not built yet; run `npm run build` in the repository first\n');
    process.exit(70);
  }
  throw err;
}

// A reader that went away (`backchannel client contact verify bob | head -3`) ends the command
// quietly, as SIGPIPE ends any Unix tool, instead of a stack trace for EPIPE.
process.stdout.on('error', (err) => {
  if (err && err.code === 'EPIPE') process.exit(0);
  throw err;
});

cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // main() reports expected errors itself; this is the last line of defence.
    process.stderr.write(`backchannel: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
