// Preloaded into chaos worker processes (`node -r <this file> dist/main.js`). It wraps the built-in `sleep`
// handler's `run` so that every execution writes, from inside the handler, when it started and when it
// stopped. The database stamps attempts when it hands them out and closes them; only the handler itself
// knows whether it is still running after its lease was taken over.
//
// One JSON line per event, appended synchronously to the file named by EXECUTION_LOG: a SIGKILL cannot
// lose a line that was written, and a line is written before the handler runs or returns.
const { appendFileSync } = require('node:fs');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');

const file = process.env.EXECUTION_LOG;
if (file) {
  const dist = join(__dirname, '..', '..', '..', 'dist');
  const { SleepHandler } = require(join(dist, 'handlers', 'builtin', 'sleep.handler.js'));
  const worker = process.env.WORKER_ID || `pid-${process.pid}`;
  const run = SleepHandler.prototype.run;

  const record = (context, event, extra) => {
    const line = {
      job_id: context.jobId,
      attempt: context.attempt,
      worker,
      event,
      at: Date.now(),
      // Epoch milliseconds with sub-millisecond precision, comparable across processes on one machine.
      at_precise: performance.timeOrigin + performance.now(),
      ...extra,
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  };

  SleepHandler.prototype.run = async function recordedRun(payload, context) {
    record(context, 'start', { honours_abort: !payload.ignore_abort });
    try {
      const result = await run.call(this, payload, context);
      record(context, 'end');
      return result;
    } catch (error) {
      record(context, context.signal.aborted ? 'aborted' : 'end');
      throw error;
    }
  };
}
