/**
 * The settings each peer runs with, in one place so that the runners, the printed table and the README
 * agree. "defaults" keeps every library default except how many jobs one process works at once, which is
 * set to our default of 10 (at their literal defaults graphile-worker works 1 job at a time and pg-boss
 * fetches 1 job every 2 s). "best" is the setting the library's own documentation gives for throughput.
 */
module.exports = {
  'graphile-worker': {
    defaults: {
      label: 'concurrency 10, otherwise defaults',
      worker: { concurrentJobs: 10 },
    },
    // The configuration of the "Performance" page of graphile-worker's documentation.
    best: {
      label: 'concurrency 24, pool 25, local queue 500, completion and failure batching (delay 0)',
      worker: {
        concurrentJobs: 24,
        maxPoolSize: 25,
        localQueue: { size: 500 },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
  },
  'pg-boss': {
    defaults: {
      label: '10 work() workers, batchSize 10, otherwise defaults (poll every 2 s)',
      workers: 10,
      work: { batchSize: 10 },
    },
    // pg-boss documents no throughput setting; a worker sleeps out its polling interval after every fetch,
    // so the documented levers are more workers, bigger batches and the shortest interval it accepts.
    best: {
      label: '8 work() workers, batchSize 100, pollingIntervalSeconds 0.5 (the minimum), pool 10',
      workers: 8,
      work: { batchSize: 100, pollingIntervalSeconds: 0.5 },
    },
  },
};
