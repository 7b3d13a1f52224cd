// A grpc-js Echo server for bench/loadtest.py: SayHello only, no reflection
// (crgrpc bench is given bench's protoset), plaintext on 127.0.0.1.
// Usage: node bench/echo_server.js NODE_MODULES_DIR ECHO_PROTO   → prints the port
'use strict';
const path = require('path');
const [modules, protoFile] = process.argv.slice(2);
const grpc = require(path.join(modules, '@grpc', 'grpc-js'));
const protoLoader = require(path.join(modules, '@grpc', 'proto-loader'));
const definition = protoLoader.loadSync(protoFile, { keepCase: true, defaults: false });
const echo = grpc.loadPackageDefinition(definition).echo;
const server = new grpc.Server();
server.addService(echo.EchoServer.service, {
  SayHello: (call, callback) => callback(null, { message: `Hello ${call.request.name} from K_REVISION local` }),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`cannot listen: ${err.message}`);
    process.exit(1);
  }
  console.log(port);
});
