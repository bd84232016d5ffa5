// The reference for `bench subscribers`: a GraphQL server on Node.js with the
// graphql-ws library's useServer and graphql-js, serving the same operations the
// benchmark sends to exechub: the `executionEvents` subscription over WebSocket, and
// `appendLog` over HTTP POST, which publishes an event to the execution's subscribers
// from memory (no database: this is the fan-out alone).
// Usage: node server.mjs <port>
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { buildSchema, graphql } from 'graphql';

const port = Number(process.argv[2] || 4000);

const schema = buildSchema(`
  type Query { ok: Boolean }
  input LogInput { message: String! }
  type Mutation { appendLog(id: ID!, log: LogInput!): Boolean }
  type ExecutionEvent { executionId: ID! sequence: Int! type: String! timestamp: String! }
  type Subscription { executionEvents(executionId: ID!): ExecutionEvent! }
`);

// Subscribers by execution: each a function that takes the next event.
const listeners = new Map();
const sequences = new Map();

function listen(executionId) {
  const queue = [];
  let wake = null;
  const push = (event) => {
    if (wake) { const w = wake; wake = null; w({ value: event, done: false }); } else { queue.push(event); }
  };
  if (!listeners.has(executionId)) listeners.set(executionId, new Set());
  listeners.get(executionId).add(push);
  const stop = () => {
    const set = listeners.get(executionId);
    set.delete(push);
    if (set.size === 0) listeners.delete(executionId);
    if (wake) { wake({ value: undefined, done: true }); wake = null; }
  };
  return {
    [Symbol.asyncIterator]() { return this; },
    next() {
      if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
      return new Promise((resolve) => { wake = resolve; });
    },
    return() { stop(); return Promise.resolve({ value: undefined, done: true }); },
  };
}

const subscription = schema.getSubscriptionType().getFields().executionEvents;
subscription.subscribe = (_root, { executionId }) => listen(executionId);
subscription.resolve = (event) => event;

const rootValue = {
  ok: () => true,
  appendLog: ({ id }) => {
    const sequence = (sequences.get(id) || 0) + 1;
    sequences.set(id, sequence);
    const event = { executionId: id, sequence, type: 'LOG_APPENDED', timestamp: new Date().toISOString() };
    for (const push of listeners.get(id) || []) push(event);
    return true;
  },
};

const server = createServer((request, response) => {
  if (request.method !== 'POST') { response.writeHead(200).end('ok'); return; }
  let body = '';
  request.on('data', (chunk) => { body += chunk; });
  request.on('end', async () => {
    const { query, variables } = JSON.parse(body);
    const result = await graphql({ schema, source: query, rootValue, variableValues: variables });
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  });
});

const wss = new WebSocketServer({ server, path: '/graphql' });
useServer({ schema }, wss);
server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
