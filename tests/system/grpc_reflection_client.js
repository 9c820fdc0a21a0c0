// An independent gRPC client: @grpc/grpc-js with server reflection (what grpcurl does), no
// proto files of ours. Lists the services, checks health, describes AuditService, and runs
// the calls given on the command line; prints one JSON object per result.
//
//   node grpc_reflection_client.js <host:port> list|health|describe
//   node grpc_reflection_client.js <host:port> call <Method> '<request JSON>'
//   node grpc_reflection_client.js <host:port> call <package.Service/Method> '<request JSON>'
const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

const loaderOptions = { keepCase: true, longs: String, enums: String, defaults: false,
                        oneofs: true, bytes: String };

async function client(addr, reflection, symbol) {
  const descriptor = await reflection.getDescriptorBySymbol(symbol);
  const pkg = descriptor.getPackageObject(loaderOptions);
  const path = symbol.split('.');
  let ctor = pkg;
  for (const part of path) ctor = ctor[part];
  return new ctor(addr, grpc.credentials.createInsecure());
}

function unary(c, method, request) {
  return new Promise((resolve) => {
    c[method](request, { deadline: Date.now() + 10000 }, (err, response) => {
      resolve(err ? { code: grpc.status[err.code], details: err.details } : { ok: response });
    });
  });
}

async function main() {
  const [addr, command, method, json] = process.argv.slice(2);
  const reflection = new GrpcReflection(addr, grpc.credentials.createInsecure());
  if (command === 'list') {
    console.log(JSON.stringify({ services: (await reflection.listServices()).sort() }));
  } else if (command === 'describe') {
    const methods = await reflection.listMethods('audit.v1.AuditService');
    console.log(JSON.stringify({ methods: methods.map((m) => m.name).sort() }));
  } else if (command === 'health') {
    const health = await client(addr, reflection, 'grpc.health.v1.Health');
    console.log(JSON.stringify(await unary(health, 'Check', { service: '' })));
  } else if (command === 'call') {
    const [service, name] = method.includes('/') ? method.split('/')
                                                 : ['audit.v1.AuditService', method];
    const stub = await client(addr, reflection, service);
    console.log(JSON.stringify(await unary(stub, name, JSON.parse(json || '{}'))));
  } else {
    throw new Error('usage: list | describe | health | call <Method> <json>');
  }
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
