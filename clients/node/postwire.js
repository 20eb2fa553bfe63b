#!/usr/bin/env node
// Postwire from Node.js with @grpc/grpc-js and @grpc/proto-loader: send one email,
// follow its events until it is delivered (resuming by cursor when the stream drops),
// then print its final status. The .proto files are loaded at run time from the
// repository's protos/ and third_party/googleapis/ (no code generation).
//
//   POSTWIRE_ADDRESS    gRPC address (127.0.0.1:50051)
//   POSTWIRE_API_KEY    API key (required)
//   POSTWIRE_FROM, POSTWIRE_TO, POSTWIRE_SUBJECT   the email (example defaults)
//   POSTWIRE_SEND_DELAY_SECONDS   schedule the email this many seconds ahead (0: now)
//   POSTWIRE_TIMEOUT_SECONDS      give up following after this long (60)
//
// Output, one line per step:
//   sent <message_id> <EMAIL_STATUS_...>
//   event <EVENT_TYPE_...> <message_id> <recipient|-> <smtp_code|-> <cursor>
//   resuming after <cursor|start> in <ms> ms (<STATUS>: <details>)
//   status <EMAIL_STATUS_...>
// Exit status 0 when the email reached a final status, 1 on an error.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const REPO = path.resolve(__dirname, '..', '..');
const TERMINAL_EVENTS = new Set([
  'EVENT_TYPE_SENT', 'EVENT_TYPE_BOUNCED', 'EVENT_TYPE_FAILED', 'EVENT_TYPE_SUPPRESSED', 'EVENT_TYPE_CANCELED',
]);
const FINAL_STATUSES = new Set([
  'EMAIL_STATUS_SENT', 'EMAIL_STATUS_BOUNCED', 'EMAIL_STATUS_FAILED', 'EMAIL_STATUS_SUPPRESSED',
  'EMAIL_STATUS_CANCELED',
]);
// Statuses after which a call is worth repeating. Send is repeated with the same
// idempotency key, so a repeat never sends a second email.
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);
const RESUMABLE = new Set([
  grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL, grpc.status.UNKNOWN,
  grpc.status.RESOURCE_EXHAUSTED,
]);
const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

function loadService() {
  const definition = protoLoader.loadSync('postwire/v1/email_service.proto', {
    includeDirs: [path.join(REPO, 'protos'), path.join(REPO, 'third_party', 'googleapis')],
    keepCase: true, // field names as in the .proto: message_id, smtp_code, ...
    enums: String, // EVENT_TYPE_SENT rather than 3
    longs: String,
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).postwire.v1.EmailService;
}

function describe(error) {
  return `${STATUS_NAMES[error.code] || error.code}: ${error.details || error.message}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Exponential backoff with jitter: 200 ms doubling up to 5 s, each wait 50-100 % of that.
function backoff(failures) {
  const ceiling = Math.min(5000, 200 * 2 ** Math.min(failures, 10));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

// A unary call as a promise, retried with backoff on RETRYABLE statuses.
async function unary(client, method, request, metadata, attempts = 6) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await new Promise((resolve, reject) => {
        client[method](request, metadata, { deadline: Date.now() + 10000 }, (error, reply) =>
          (error ? reject(error) : resolve(reply)));
      });
    } catch (error) {
      if (!RETRYABLE.has(error.code) || attempt >= attempts) throw error;
      const wait = backoff(attempt - 1);
      console.error(`${method} failed (${describe(error)}); retry ${attempt} in ${wait} ms`);
      await sleep(wait);
    }
  }
}

// One StreamEvents call: calls onEvent for each event (keep-alives are skipped) and
// resolves with the error that ended the stream (null when it ended cleanly or was
// cancelled by us).
function streamOnce(client, request, metadata, onEvent) {
  return new Promise((resolve) => {
    const call = client.StreamEvents(request, metadata);
    let settled = false;
    const finish = (error) => {
      if (!settled) {
        settled = true;
        resolve(error);
      }
    };
    call.on('data', (response) => {
      if (response.event && !settled && onEvent(response.event) === 'stop') {
        finish(null);
        call.cancel();
      }
    });
    call.on('error', (error) => finish(error.code === grpc.status.CANCELLED ? null : error));
    call.on('end', () => finish(null));
  });
}

// Follow the events matching `request` from `after`, reconnecting with backoff and the
// last cursor seen, until onEvent returns 'stop'.
async function followEvents(client, request, metadata, onEvent, deadline) {
  let cursor = request.after || '';
  let failures = 0;
  for (;;) {
    let stopped = false;
    const error = await streamOnce(client, { ...request, after: cursor }, metadata, (event) => {
      cursor = event.cursor;
      failures = 0;
      const verdict = onEvent(event);
      stopped = verdict === 'stop';
      return verdict;
    });
    if (stopped) return;
    if (error && !RESUMABLE.has(error.code)) throw error;
    if (Date.now() > deadline) throw new Error('gave up following events: timeout');
    const wait = backoff(failures);
    failures += 1;
    console.log(`resuming after ${cursor || 'start'} in ${wait} ms (${error ? describe(error) : 'stream ended'})`);
    await sleep(wait);
  }
}

async function main() {
  const address = process.env.POSTWIRE_ADDRESS || '127.0.0.1:50051';
  const apiKey = process.env.POSTWIRE_API_KEY;
  if (!apiKey) throw new Error('set POSTWIRE_API_KEY');
  const delay = Number(process.env.POSTWIRE_SEND_DELAY_SECONDS || 0);
  const timeoutMs = 1000 * Number(process.env.POSTWIRE_TIMEOUT_SECONDS || 60);

  const EmailService = loadService();
  const client = new EmailService(address, grpc.credentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 200, // reconnect quickly once the server is back
    'grpc.max_reconnect_backoff_ms': 2000,
  });
  const metadata = new grpc.Metadata();
  metadata.set('x-api-key', apiKey);

  const request = {
    from_address: process.env.POSTWIRE_FROM || 'node@example.com',
    to: [process.env.POSTWIRE_TO || 'someone@example.com'],
    subject: process.env.POSTWIRE_SUBJECT || 'Hello from Node',
    text_body: 'Sent with @grpc/grpc-js.',
    tags: ['node-example'],
    idempotency_key: crypto.randomUUID(), // makes the retries in unary() safe
  };
  if (delay > 0) {
    const at = Date.now() + delay * 1000;
    request.send_at = { seconds: String(Math.floor(at / 1000)), nanos: (at % 1000) * 1e6 };
  }
  const sent = await unary(client, 'Send', request, metadata);
  console.log(`sent ${sent.message_id} ${sent.status}`);

  const deadline = Date.now() + timeoutMs;
  let finalStatus = null;
  await followEvents(client, { message_ids: [sent.message_id] }, metadata, (event) => {
    console.log(['event', event.type, event.message_id, event.recipient || '-', event.smtp_code || '-',
      event.cursor].join(' '));
    return TERMINAL_EVENTS.has(event.type) ? 'stop' : 'more';
  }, deadline);

  // A terminal event for one recipient; the email's own status says where it ended.
  while (Date.now() < deadline) {
    const status = await unary(client, 'GetStatus', { message_id: sent.message_id }, metadata);
    if (FINAL_STATUSES.has(status.status)) {
      finalStatus = status.status;
      break;
    }
    await sleep(100);
  }
  client.close();
  if (!finalStatus) throw new Error('gave up waiting for a final status: timeout');
  console.log(`status ${finalStatus}`);
}

main().then(() => process.exit(0), (error) => {
  console.error(`error ${error.code !== undefined ? describe(error) : error.message}`);
  process.exit(1);
});
