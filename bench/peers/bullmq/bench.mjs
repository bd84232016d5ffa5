// The reference for `bench steps`: BullMQ processing no-op jobs with one worker at
// concurrency 50, on the same Redis. Prints one JSON report:
//  - throughput: with the worker idle, add `--jobs` jobs (addBulk, 1,000 at a time)
//    and time until the worker has completed all of them;
//  - latency: add one job at a time at `--rate` jobs/s for `--seconds`, and measure
//    add → processor start (the same clock: producer and worker share this process).
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';

const { values } = parseArgs({
  options: {
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    jobs: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '50' },
  },
});
const url = new URL(values.redis);
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const prefix = `exechub-bench-bullmq-${process.pid}`;
const now = () => performance.timeOrigin + performance.now();

async function run(name, produce, expected) {
  const queue = new Queue(name, { connection, prefix });
  const latencies = [];
  let completed = 0;
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  const worker = new Worker(name, async (job) => {
    if (job.data.addedAt) latencies.push(now() - job.data.addedAt);
    return null;
  }, { connection, prefix, concurrency: Number(values.concurrency) });
  worker.on('completed', () => { if (++completed === expected) resolveDone(); });
  await worker.waitUntilReady();
  const started = now();
  await produce(queue);
  await done;
  const seconds = (now() - started) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { seconds, latencies };
}

const percentile = (sorted, p) => sorted[Math.round((sorted.length - 1) * p)] ?? NaN;

const jobs = Number(values.jobs);
const throughput = await run('throughput', async (queue) => {
  for (let i = 0; i < jobs; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(jobs, i + 1000); j++) batch.push({ name: 'noop', data: { n: j } });
    await queue.addBulk(batch);
  }
}, jobs);

const rate = Number(values.rate);
const paced = rate * Number(values.seconds);
const latency = await run('latency', async (queue) => {
  const start = now();
  for (let i = 0; i < paced; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    queue.add('noop', { addedAt: now() });
  }
}, paced);
const sorted = latency.latencies.sort((a, b) => a - b);

console.log(JSON.stringify({
  jobs,
  seconds: throughput.seconds,
  jobsPerSecond: jobs / throughput.seconds,
  latencyP50Ms: percentile(sorted, 0.5),
  latencyP99Ms: percentile(sorted, 0.99),
}));
