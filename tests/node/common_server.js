// A grpc-js server with @grpc/reflection over commonly served protos, for
// crgrpc's schema tests of grpc-node's descriptor quirks.
//
// Serves, loaded by @grpc/proto-loader and described by @grpc/reflection (v1
// and v1alpha):
// - grpc.health.v1.Health (grpc-health-check's health.proto and service);
// - grpc.channelz.v1.Channelz (grpc-js's channelz.proto and handlers);
// - library.v1.Library (tests/data/protos/library/v1/library.proto), which
//   imports google/api/annotations.proto and field_behavior.proto
//   (google-proto-files) and protoc-gen-validate's validate/validate.proto
//   (as shipped in grpc-js);
// - the proto2 messages of tests/data/protos/legacy/legacy.proto (no service).
// proto-loader labels every file proto3, writes reserved and extension range
// ends inclusive, and copies extensions into the extended message.
//
// Usage: node common_server.js [PORT]   (0 or no PORT: a free port)
// Prints "listening on 127.0.0.1:PORT" once serving.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');
const health = require('grpc-health-check');

const repo = path.resolve(__dirname, '..', '..');
const modules = path.join(__dirname, 'node_modules');
const includeDirs = [
  path.join(modules, 'grpc-health-check', 'proto'),
  path.join(modules, '@grpc', 'grpc-js', 'proto'),
  path.join(modules, '@grpc', 'grpc-js', 'proto', 'protoc-gen-validate'),
  path.join(modules, 'google-proto-files'),
  path.join(repo, 'tests', 'data', 'protos'),
];
const definition = protoLoader.loadSync(
  ['health/v1/health.proto', 'channelz.proto', 'library/v1/library.proto', 'legacy/legacy.proto'],
  { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs },
);
const loaded = grpc.loadPackageDefinition(definition);

const server = new grpc.Server();
new health.HealthImplementation({ '': 'SERVING', 'library.v1.Library': 'SERVING' }).addToServer(server);
server.addService(grpc.getChannelzServiceDefinition(), grpc.getChannelzHandlers());
server.addService(loaded.library.v1.Library.service, {
  GetBook: (call, callback) => callback(null, {
    name: call.request.name,
    title: 'Dune',
    pages: 412,
    authors: ['Frank Herbert'],
  }),
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
