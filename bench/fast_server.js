// A fast Echo server for the per-message benchmarks (grpc-js, with reflection).
//
// The Python server is the bottleneck for streams of small messages, so this
// one measures the client: replies are encoded by hand (one length-prefixed
// string field, no protobufjs on the way out), streams respect back-pressure,
// and messages up to 64 MiB are accepted both ways.
//
//   echo.EchoServer/SayHello              "Hello NAME from node"
//   echo.EchoServer/SayHelloStream        COUNT x "MsgI Hello NAME from node"
//   echo.EchoServer/SayHelloClientStream  "Hello N messages, last NAME from node"
//   echo.EchoServer/SayHelloBidi          one "Hello NAME from node" per request
//
// Usage: node bench/fast_server.js [PORT]   (needs `npm ci` in tests/node)
// Prints "listening on 127.0.0.1:PORT" once serving.
'use strict';

const path = require('path');
const { createRequire } = require('module');

const repo = path.resolve(__dirname, '..');
const req = createRequire(path.join(repo, 'tests', 'node', 'package.json'));
const grpc = req('@grpc/grpc-js');
const protoLoader = req('@grpc/proto-loader');
const { ReflectionService } = req('@grpc/reflection');

const definition = protoLoader.loadSync(['echo.proto'], {
  keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
  includeDirs: [path.join(repo, 'protos')],
});
const methods = definition['echo.EchoServer'];

function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}

// EchoReply{message: text}, encoded directly: tag 0x0a, length, UTF-8 bytes.
function reply(text) {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([0x0a]), varint(body.length), body]);
}

const raw = (b) => b; // replies are already bytes
function method(name) {
  const m = methods[name];
  return { ...m, responseSerialize: raw };
}
const service = {
  SayHello: method('SayHello'),
  SayHelloStream: method('SayHelloStream'),
  SayHelloClientStream: method('SayHelloClientStream'),
  SayHelloBidi: method('SayHelloBidi'),
};

function stream(call) {
  const n = call.request.count || 2;
  const suffix = ` Hello ${call.request.name || ''} from node`;
  let i = 1;
  function more() {
    while (i <= n) {
      const ok = call.write(reply(`Msg${i}${suffix}`));
      i += 1;
      if (!ok) { call.once('drain', more); return; }
    }
    call.end();
  }
  call.on('cancelled', () => { i = n + 1; });
  more();
}

const server = new grpc.Server({
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
});
server.addService(service, {
  SayHello: (call, callback) => callback(null, reply(`Hello ${call.request.name || ''} from node`)),
  SayHelloStream: stream,
  SayHelloClientStream: (call, callback) => {
    let n = 0;
    let last = '';
    call.on('data', (m) => { n += 1; last = m.name || ''; });
    call.on('end', () => callback(null, reply(`Hello ${n} messages, last ${last} from node`)));
  },
  SayHelloBidi: (call) => {
    call.on('data', (m) => call.write(reply(`Hello ${m.name || ''} from node`)));
    call.on('end', () => call.end());
  },
});
new ReflectionService(definition).addToServer(server);

const port = Number(process.argv[2] || 0);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(`cannot listen: ${err.message}`);
    process.exit(1);
  }
  console.log(`listening on 127.0.0.1:${bound}`);
});

function stop() { server.forceShutdown(); process.exit(0); }
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
