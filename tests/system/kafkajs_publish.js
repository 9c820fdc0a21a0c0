// Publishes audit events with kafkajs, an independent pure-JavaScript Kafka client, in each
// of the three encodings the ingestor accepts, plus one poison message. The protobuf envelope
// is encoded by protobufjs straight from proto/audit/v1/event.proto: nothing of ours is used.
//
//   node kafkajs_publish.js <brokers> <id-prefix> <proto-root>
const path = require('path');
const { Kafka, Partitioners, logLevel } = require('kafkajs');
const protobuf = require('protobufjs');

async function main() {
  const [brokers, prefix, protoRoot] = process.argv.slice(2);
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) =>
    target.startsWith('google/') ? path.join('/usr/include', target) : path.join(protoRoot, target);
  await root.load('audit/v1/event.proto', { keepCase: false });
  const Event = root.lookupType('audit.v1.Event');

  const kafka = new Kafka({ clientId: 'kafkajs-interop', brokers: brokers.split(','),
                            logLevel: logLevel.WARN });
  // Not idempotent: that mode needs a controller broker, which librdkafka's mock does not
  // advertise. Ordering holds anyway: one send at a time.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const subject = `${prefix}-order`;
  const now = new Date();
  const seconds = Math.floor(now.getTime() / 1000);

  const pb = Event.encode(Event.create({
    id: `${prefix}-pb`, source: '/services/orders', type: 'com.acme.order.created',
    specVersion: '1.0', subject, time: { seconds, nanos: 0 },
    dataContentType: 'application/json', textData: '{"total": 9.99, "via": "kafkajs"}',
    correlationId: `${prefix}-corr`, actor: 'user:js',
  })).finish();

  const structured = JSON.stringify({
    specversion: '1.0', id: `${prefix}-json`, source: '/services/payments',
    type: 'com.acme.payment.authorized', subject, time: now.toISOString(),
    datacontenttype: 'application/json', correlationid: `${prefix}-corr`,
    causationid: `${prefix}-pb`, data: { amount: 9.99, currency: 'EUR' },
  });

  await producer.send({ topic: 'orders.events', messages: [
    { key: subject, value: Buffer.from(pb), headers: { 'content-type': 'application/protobuf' } },
  ] });
  await producer.send({ topic: 'payments.events', messages: [
    { key: subject, value: structured,
      headers: { 'content-type': 'application/cloudevents+json; charset=UTF-8' } },
  ] });
  await producer.send({ topic: 'shipping.events', messages: [
    { key: subject, value: '{"carrier": "UPS"}', headers: {
      ce_specversion: '1.0', ce_id: `${prefix}-bin`, ce_source: '/services/shipping',
      ce_type: 'com.acme.shipment.shipped', ce_subject: subject, ce_time: now.toISOString(),
      ce_correlationid: `${prefix}-corr`, ce_causationid: `${prefix}-json`,
      'content-type': 'application/json' } },
  ] });
  // Poison: binary mode with an impossible time.
  await producer.send({ topic: 'shipping.events', messages: [
    { key: `${prefix}-poison`, value: '{}', headers: {
      ce_specversion: '1.0', ce_id: `${prefix}-bad`, ce_source: '/services/shipping',
      ce_type: 'com.acme.shipment.shipped', ce_subject: subject,
      ce_time: '2026-02-30T00:00:00Z', 'content-type': 'application/json' } },
  ] });
  await producer.disconnect();
}

main().catch((e) => { console.error(e); process.exit(1); });
