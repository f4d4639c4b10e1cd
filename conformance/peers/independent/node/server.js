#!/usr/bin/env node
/**
 * An independent @grpc/grpc-js server, for the conformance suite to judge.
 *
 * It serves `independent.echo.v1.EchoService` (echo.proto, loaded at run
 * time with @grpc/proto-loader; the semantics and error codes are in its
 * comments), one method per RPC pattern, plus server reflection from
 * @grpc/reflection (v1 and v1alpha) and `grpc.health.v1.Health` from
 * grpc-health-check. Nothing here shares code with the repository's
 * services or with the suite: the gRPC stack is Node's, and the contract is
 * one the suite has never seen, so only the suite's generic checks apply,
 * and a correct server must pass every one of them. A FAIL is either a
 * defect of grpc-js (or of this small file) or a false alarm of the suite.
 *
 * Reflection lists every service this process serves: the echo service,
 * health, and both reflection services (their .proto files, shipped
 * inside @grpc/reflection and grpc-health-check, are loaded into the
 * package definition that reflection describes).
 *
 * Conventions as conformance/peers/python/server.py: `--addr HOST:PORT`
 * (port 0 picks a free one); once serving, one line `listening on
 * HOST:PORT` on stdout; logs on stderr; on SIGTERM or SIGINT every health
 * status turns NOT_SERVING, in-flight calls drain for `--shutdown-grace`
 * seconds (then are cancelled), and the process exits 0.
 *
 *     npm ci --prefix conformance/peers/independent/node
 *     node conformance/peers/independent/node/server.js --addr 127.0.0.1:0
 */
'use strict';

const path = require('path');
const { parseArgs } = require('util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');
const { HealthImplementation, protoPath: healthProtoPath } = require('grpc-health-check');

const ECHO = 'independent.echo.v1.EchoService';
const MAX_EXPAND_COUNT = 1000;
const MAX_INTERVAL_MS = 10000;

const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function log(message) {
  process.stderr.write(`${new Date().toISOString()} grpc-js-peer: ${message}\n`);
}

function usage(message) {
  process.stderr.write(
    `${message}\nusage: server.js [--addr HOST:PORT] [--max-message-size BYTES] [--shutdown-grace SECONDS]\n`,
  );
  process.exit(2);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        addr: { type: 'string', default: '127.0.0.1:50051' },
        'max-message-size': { type: 'string', default: String(16 * 1024 * 1024) },
        'shutdown-grace': { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  if (values.help) usage('An independent @grpc/grpc-js server for the conformance suite.');
  const maxMessageSize = Number(values['max-message-size']);
  const grace = Number(values['shutdown-grace']);
  if (!Number.isSafeInteger(maxMessageSize) || maxMessageSize <= 0) usage('--max-message-size must be a positive integer');
  if (!Number.isFinite(grace) || grace < 0) usage('--shutdown-grace must be 0 or more seconds');
  if (!/^.+:\d+$/.test(values.addr)) usage(`--addr ${values.addr} is not HOST:PORT`);
  return { addr: values.addr, maxMessageSize, grace };
}

function invalidArgument(details) {
  return { code: grpc.status.INVALID_ARGUMENT, details };
}

function varintLength(value) {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    length += 1;
  }
  return length;
}

/** Encoded size of a CollectResponse, to refuse one that could not be sent. */
function collectResponseSize(messageBytes, count) {
  const message = messageBytes > 0 ? 1 + varintLength(messageBytes) + messageBytes : 0;
  const counted = count > 0 ? 1 + varintLength(count) : 0;
  return message + counted;
}

function echoHandlers(maxMessageSize) {
  return {
    Echo(call, callback) {
      callback(null, { message: call.request.message, index: 0 });
    },

    Expand(call) {
      const { message, count, interval_ms: interval } = call.request;
      if (count > MAX_EXPAND_COUNT) {
        call.emit('error', invalidArgument(`count is ${count}; at most ${MAX_EXPAND_COUNT} responses are allowed`));
        return;
      }
      if (interval > MAX_INTERVAL_MS) {
        call.emit('error', invalidArgument(`interval_ms is ${interval}; at most ${MAX_INTERVAL_MS} is allowed`));
        return;
      }
      let index = 0;
      let timer = null;
      call.on('cancelled', () => clearTimeout(timer));
      const next = () => {
        timer = null;
        if (call.cancelled) return;
        if (index === count) {
          call.end();
          return;
        }
        call.write({ message, index });
        index += 1;
        if (interval === 0) {
          // setImmediate, not a loop: a cancelled call is noticed between writes.
          setImmediate(next);
        } else {
          timer = setTimeout(next, index === count ? 0 : interval);
        }
      };
      next();
    },

    Collect(call, callback) {
      const parts = [];
      let bytes = 0;
      let count = 0;
      let done = false;
      call.on('data', (request) => {
        if (done) return;
        count += 1;
        bytes += Buffer.byteLength(request.message, 'utf8');
        parts.push(request.message);
        if (collectResponseSize(bytes, count) > maxMessageSize) {
          done = true;
          callback({
            code: grpc.status.RESOURCE_EXHAUSTED,
            details: `the concatenation of ${count} messages is ${bytes} bytes, over the ${maxMessageSize}-byte message limit`,
          });
        }
      });
      call.on('end', () => {
        if (done) return;
        done = true;
        callback(null, { message: parts.join(''), count });
      });
    },

    Chat(call) {
      let index = 0;
      call.on('data', (request) => {
        call.write({ message: request.message, index });
        index += 1;
      });
      call.on('end', () => call.end());
    },
  };
}

function main() {
  const { addr, maxMessageSize, grace } = parseCli();

  // Everything reflection describes: the echo contract, health, and the
  // reflection protocol itself, each under its usual file name.
  const reflectionRoot = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const healthRoot = path.resolve(path.dirname(healthProtoPath), '..', '..');
  const definition = protoLoader.loadSync(
    [
      'echo.proto',
      'health/v1/health.proto',
      'grpc/reflection/v1/reflection.proto',
      'grpc/reflection/v1alpha/reflection.proto',
    ],
    { ...LOADER_OPTIONS, includeDirs: [__dirname, healthRoot, reflectionRoot] },
  );
  const echo = grpc.loadPackageDefinition(definition).independent.echo.v1.EchoService;

  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageSize,
    'grpc.max_send_message_length': maxMessageSize,
  });
  server.addService(echo.service, echoHandlers(maxMessageSize));

  const health = new HealthImplementation({ '': 'SERVING', [ECHO]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(definition).addToServer(server);

  // Installed before "listening" is printed, so that a supervisor that
  // stops us the moment we are up still gets a graceful shutdown.
  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    // NOT_SERVING first, so health watchers and load balancers react while
    // in-flight calls drain; whatever outlives the grace period is cancelled.
    log(`${signal}: health is NOT_SERVING, draining calls`);
    for (const name of ['', ECHO]) health.setStatus(name, 'NOT_SERVING');
    const cutOff = setTimeout(() => {
      log(`calls still open after ${grace} s: cancelling them`);
      server.forceShutdown();
    }, grace * 1000);
    server.tryShutdown((err) => {
      clearTimeout(cutOff);
      if (err) log(`shutdown: ${err.message}`);
      log('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      log(`cannot listen on ${addr}: ${err.message}`);
      process.exit(1);
    }
    const host = addr.slice(0, addr.lastIndexOf(':'));
    log(`serving ${ECHO}, grpc.health.v1.Health, grpc.reflection.v1.ServerReflection, grpc.reflection.v1alpha.ServerReflection`);
    process.stdout.write(`listening on ${host}:${port}\n`);
  });
}

main();
