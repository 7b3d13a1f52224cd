// A grpc-js server with @grpc/reflection for crgrpc's schema tests.
//
// Serves echo.EchoServer (protos/echo.proto) and shop.v1.Catalog /
// shop.v1.Greeter (tests/data/protos) loaded by @grpc/proto-loader, with
// grpc-node's reflection service (v1 and v1alpha). Its descriptors carry
// grpc-node's known quirks (grpc-node issues 3018 and 3034).
//
// Usage: node server.js [PORT]   (0 or no PORT: a free port)
// Prints "listening on 127.0.0.1:PORT" once serving.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');

const repo = path.resolve(__dirname, '..', '..');
const options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };
const definition = protoLoader.loadSync(
  ['echo.proto', 'shop/v1/catalog.proto'],
  { ...options, includeDirs: [path.join(repo, 'protos'), path.join(repo, 'tests', 'data', 'protos')] },
);
const loaded = grpc.loadPackageDefinition(definition);

function reply(call) {
  const req = call.request || {};
  return { message: `Hello ${req.name || ''} from node` };
}

const server = new grpc.Server();
server.addService(loaded.echo.EchoServer.service, {
  SayHello: (call, callback) => callback(null, reply(call)),
  SayHelloStream: (call) => {
    const n = call.request.count || 2;
    for (let i = 1; i <= n; i += 1) call.write({ message: `Msg${i} Hello ${call.request.name || ''} from node` });
    call.end();
  },
  SayHelloClientStream: (call, callback) => {
    const names = [];
    call.on('data', (m) => names.push(m.name || ''));
    call.on('end', () => callback(null, { message: `Hello ${names.join(', ')} from node` }));
  },
  SayHelloBidi: (call) => {
    call.on('data', (m) => call.write({ message: `Hello ${m.name || ''} from node` }));
    call.on('end', () => call.end());
  },
});
server.addService(loaded.shop.v1.Catalog.service, {
  GetProduct: (call, callback) => callback(null, { id: call.request.id, name: 'thing' }),
  ListProducts: (call) => call.end(),
  ImportProducts: (call, callback) => {
    let n = 0;
    call.on('data', () => { n += 1; });
    call.on('end', () => callback(null, { imported: n }));
  },
  SyncProducts: (call) => {
    call.on('data', (m) => call.write(m));
    call.on('end', () => call.end());
  },
});
server.addService(loaded.shop.v1.Greeter.service, {
  SayHello: (call, callback) => callback(null, { id: call.request.id, name: 'hello' }),
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
